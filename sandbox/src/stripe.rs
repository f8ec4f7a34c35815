//! Stripe-like server (see the module docs once written).
