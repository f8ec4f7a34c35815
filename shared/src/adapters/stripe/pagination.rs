//! Stripe list pagination (<https://docs.stripe.com/api/pagination>):
//! `limit` ≤ 100, newest first, the cursor is the last object's `id`. Like
//! async-stripe, paging stops when there is no next cursor even if
//! `has_more` is true. [`Page`] is one page, [`Pager`] walks a list one page
//! in memory at a time ([`Cursor`] says which way), and
//! [`StripeClient::list_all`] hands every page to a callback.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{StripeClient, StripeError};

/// Stripe's maximum (and our default) page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// One page of a Stripe list (`{"object":"list","data":[…],"has_more":…}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// The id to pass as `starting_after` for the next page: the last item's
    /// id, and only when `has_more` is true and that id exists.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<String>,
}

fn parse_page<T: DeserializeOwned>(body: &str, cursor_from_first: bool) -> Result<Page<T>, StripeError> {
    let raw: RawPage<'_> = serde_json::from_str(body).map_err(|e| StripeError::Decode(e.to_string()))?;
    let edge = if cursor_from_first { raw.data.first() } else { raw.data.last() };
    let edge_id = match edge {
        Some(r) => serde_json::from_str::<IdOnly>(r.get()).ok().and_then(|o| o.id),
        None => None,
    };
    let data = raw
        .data
        .iter()
        .map(|r| serde_json::from_str::<T>(r.get()).map_err(|e| StripeError::Decode(e.to_string())))
        .collect::<Result<Vec<T>, _>>()?;
    Ok(Page { data, has_more: raw.has_more, next_cursor: if raw.has_more { edge_id } else { None } })
}

/// Which way a [`Pager`] walks a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Older objects than this id (the usual direction).
    StartingAfter(String),
    /// Newer objects than this id (pages still come newest first; the next
    /// cursor is the page's first id).
    EndingBefore(String),
}

/// Walks a list page by page; only one page is in memory at a time.
///
/// ```ignore
/// let mut pager = client.pager::<Customer>("/v1/customers", &[]);
/// while let Some(page) = pager.next_page().await? { … }
/// ```
#[derive(Debug)]
pub struct Pager<'c, T> {
    client: &'c StripeClient,
    path: String,
    params: Vec<(String, String)>,
    cursor: Option<Cursor>,
    backward: bool,
    done: bool,
    pages: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Pager<'_, T> {
    /// Resumes after (older than) `id`.
    pub fn starting_after(mut self, id: impl Into<String>) -> Self {
        self.cursor = Some(Cursor::StartingAfter(id.into()));
        self.backward = false;
        self
    }

    /// Walks towards newer objects than `id`.
    pub fn ending_before(mut self, id: impl Into<String>) -> Self {
        self.cursor = Some(Cursor::EndingBefore(id.into()));
        self.backward = true;
        self
    }

    /// The next page's items, or `None` once the list is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>, StripeError> {
        if self.done {
            return Ok(None);
        }
        let mut params: Vec<(&str, String)> = self.params.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        match &self.cursor {
            Some(Cursor::StartingAfter(id)) => params.push(("starting_after", id.clone())),
            Some(Cursor::EndingBefore(id)) => params.push(("ending_before", id.clone())),
            None => {}
        }
        let page: Page<T> = self.client.fetch_page(&self.path, &params, self.backward).await?;
        self.pages += 1;
        match page.next_cursor {
            Some(c) => {
                self.cursor = Some(if self.backward { Cursor::EndingBefore(c) } else { Cursor::StartingAfter(c) })
            }
            None => self.done = true,
        }
        if page.data.is_empty() {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(page.data))
    }

    /// The cursor the next request will use (persist it to resume later).
    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }

    /// Pages fetched so far.
    pub fn pages_fetched(&self) -> u64 {
        self.pages
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl StripeClient {
    /// One page of a list; `limit=100` unless `params` sets it.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        starting_after: Option<&str>,
    ) -> Result<Page<T>, StripeError> {
        let mut p: Vec<(&str, String)> = params.to_vec();
        if let Some(id) = starting_after {
            p.push(("starting_after", id.to_owned()));
        }
        self.fetch_page(path, &p, false).await
    }

    async fn fetch_page<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        backward: bool,
    ) -> Result<Page<T>, StripeError> {
        let mut p: Vec<(&str, String)> = params.to_vec();
        if !p.iter().any(|(k, _)| *k == "limit") {
            p.push(("limit", MAX_PAGE_SIZE.to_string()));
        }
        let body = self.send_with_retries(path, &p).await?;
        parse_page(&body, backward)
    }

    /// A pager over `path` (see [`Pager`]).
    pub fn pager<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Pager<'_, T> {
        Pager {
            client: self,
            path: path.to_owned(),
            params: params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            cursor: None,
            backward: false,
            done: false,
            pages: 0,
            _t: PhantomData,
        }
    }

    /// Walks the whole list, handing each page to `on_page` (one page in
    /// memory at a time). Returns the number of items seen.
    pub async fn list_all<T, F>(
        &self,
        path: &str,
        params: &[(&str, String)],
        mut on_page: F,
    ) -> Result<u64, StripeError>
    where
        T: DeserializeOwned,
        F: FnMut(Vec<T>),
    {
        let mut pager = self.pager::<T>(path, params);
        let mut n = 0u64;
        while let Some(items) = pager.next_page().await? {
            n += items.len() as u64;
            on_page(items);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
