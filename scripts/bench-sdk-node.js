#!/usr/bin/env node
// Times stripe-node's `stripe.webhooks.constructEvent` (signature check +
// JSON.parse) on the payload the Rust `verify` bench uses
// (events/stripe/customer.subscription.updated.json, compact, keys sorted).
// The SDK is not a dependency of this repo: install it elsewhere and point
// STRIPE_NODE_MODULES at that node_modules directory, e.g.
//   mkdir -p /tmp/sdkbench && (cd /tmp/sdkbench && npm install stripe)
//   STRIPE_NODE_MODULES=/tmp/sdkbench/node_modules node scripts/bench-sdk-node.js
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const modules = process.env.STRIPE_NODE_MODULES;
if (!modules) {
  console.error('set STRIPE_NODE_MODULES to a node_modules directory holding `stripe`');
  process.exit(2);
}
const Stripe = require(path.join(modules, 'stripe'));
const version = require(path.join(modules, 'stripe', 'package.json')).version;
const stripe = Stripe('sk_test_bench_only');
const SECRET = 'whsec_bench_secret';

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k]);
    return o;
  }
  return v;
}

const file = path.join(__dirname, '..', 'events', 'stripe', 'customer.subscription.updated.json');
const body = JSON.stringify(sortKeys(JSON.parse(fs.readFileSync(file, 'utf8'))));
const t = Math.floor(Date.now() / 1000);
const sig = crypto.createHmac('sha256', SECRET).update(`${t}.${body}`, 'utf8').digest('hex');
const header = `t=${t},v1=${sig}`;
if (stripe.webhooks.constructEvent(body, header, SECRET).type !== 'customer.subscription.updated') throw new Error('sanity');

const n = Number(process.argv[2] || 20000);
for (let i = 0; i < 2000; i++) stripe.webhooks.constructEvent(body, header, SECRET);
const runs = [];
for (let r = 0; r < 7; r++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) stripe.webhooks.constructEvent(body, header, SECRET);
  runs.push(Number(process.hrtime.bigint() - start) / 1e3 / n);
}
runs.sort((a, b) => a - b);
console.log(
  `node stripe ${version} (node ${process.version}): constructEvent on ${Buffer.byteLength(body)} B: ` +
    `best ${runs[0].toFixed(2)} µs/event, median ${runs[3].toFixed(2)} µs/event (${n} events x 7 runs)`
);
