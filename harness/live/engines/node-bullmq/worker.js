'use strict';
/**
 * A worker process: a BullMQ Worker that sends each job's batch to the provider in one
 * Mitto-style bulk request, at the rate limit shared by all workers through Redis.
 *
 * BullMQ's stalled-job check hands a job whose worker died (its lock lapsed) to another
 * worker. The incident's version (ENGINE_FIXED=0) marks messages sent only after the
 * provider answered, its "already processed" guard is a set in this process's memory, and
 * it retries a request that got no answer: a job handed on after a kill between the
 * provider's acceptance and that write is sent again. The corrected version marks a batch
 * `submitting` in Redis before the request leaves; a job that finds its own messages still
 * `submitting` marks them `unknown` and never resends them, and unknowns settle as failed
 * UNKNOWN_OUTCOME (charged) after UNKNOWN_SETTLE_MS.
 */

const { Worker, Queue } = require('bullmq');
const { config, QUEUE, connect, log, jobsOf } = require('./lib');

const SEND_PATH = '/api/v1.1/Messages/sendmessagesbulk';

/** Per-message error codes the provider may accept on a later try (Mitto's adapter's table). */
const RETRYABLE_CODES = new Set(['THROTTLED', 'TEMPORARY', 'INTERNAL']);

/** Backoff between tries of a job, ms: doubling from this, at most RETRY_DELAY_MAX_MS. */
const RETRY_DELAY_MS = 500;
const RETRY_DELAY_MAX_MS = 8000;

/** How many unknowns one maintenance round settles. */
const SETTLE_LIMIT = 500;

/** How often the corrected version looks for a sending campaign left without jobs, ms. */
const REVIVE_EVERY_MS = 3000;

const redis = connect({ worker: true });

/** The incident's guard: lost with the process, and never seen by the other worker. */
const processedMessages = new Set();

/** A failure BullMQ retries, after the provider's Retry-After when it gave one. */
class RetryLater extends Error {
  constructor(message, retryAfterMs) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Posts one bulk request. `answered` with one result per message; `refused` when the
 * provider turned the request away before accepting anything (429, 5xx, a refused
 * connection); `rejected` for any other HTTP error; `ambiguous` when the request may have
 * been accepted but no usable answer came (a timeout, a dropped connection, a garbled or
 * mis-sized answer).
 */
async function sendBulk(rows) {
  const body = JSON.stringify({
    messages: rows.map((row) => ({
      trafficAccountId: config.trafficAccount,
      destination: row.destination,
      sms: { text: row.body, sender: 'SMSIM' },
    })),
  });
  let response;
  let text;
  try {
    response = await fetch(config.providerUrl + SEND_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Mitto-API-Key': config.apiKey },
      body,
      signal: AbortSignal.timeout(config.providerTimeoutMs),
    });
    text = await response.text();
  } catch (error) {
    if (!response && error.cause && error.cause.code === 'ECONNREFUSED') return { kind: 'refused', why: 'connection refused' };
    return { kind: 'ambiguous', why: String(error.cause ? error.cause.message || error.cause : error.message) };
  }
  if (response.status === 429 || response.status >= 500) {
    const retryAfterS = Number(response.headers.get('retry-after'));
    const retryAfterMs = Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : undefined;
    return { kind: 'refused', why: `HTTP ${response.status}`, retryAfterMs };
  }
  if (response.status >= 400) return { kind: 'rejected', code: `HTTP_${response.status}` };
  let results;
  try {
    results = JSON.parse(text).messages;
  } catch {
    return { kind: 'ambiguous', why: 'the answer is not JSON' };
  }
  if (!Array.isArray(results) || results.length !== rows.length) {
    // Ids are mapped back by position: a mis-sized answer cannot be mapped at all.
    return { kind: 'ambiguous', why: 'the answer does not list every message' };
  }
  return { kind: 'answered', results };
}

/** Triples [index, destination, body, ...] from a script, as rows. */
function rowsOf(flat) {
  const rows = [];
  for (let i = 0; i < flat.length; i += 3) rows.push({ index: flat[i], destination: flat[i + 1], body: flat[i + 2] });
  return rows;
}

async function waitForRate(count) {
  const waitMs = await redis.reserveRate(count, String(config.sendRate));
  if (waitMs > 0) await sleep(waitMs);
}

/** What became of each message of an answered request. */
function outcomesOf(rows, results, lastAttempt) {
  return rows.map((row, i) => {
    const result = results[i] || {};
    if (typeof result.messageId === 'string' && result.messageId) return { i: row.index, o: 'accepted', id: result.messageId };
    const code = (result.error && result.error.code) || 'REJECTED';
    const retry = RETRYABLE_CODES.has(code) && !lastAttempt;
    return { i: row.index, o: retry ? 'retry' : 'failed', e: code };
  });
}

/**
 * The corrected job: count what is left to send, wait for the rate, claim, send, record.
 * The wait comes before the claim, so a worker killed while it waits leaves nothing
 * `submitting`; between the claim and the request there is no await but the claim's own.
 */
async function processFixed(job) {
  const { campaignId, first, count } = job.data;
  const token = job.id;
  const claim = (limit) =>
    redis.claim(campaignId, token, String(Date.now()), String(first), String(count), String(limit));
  const [lost, queued] = await claim(0);
  if (lost > 0) {
    log(`job ${token}: ${lost} messages left submitting by a worker that died are now unknown, never resent`);
  }
  if (queued === 0) return;
  await waitForRate(queued);
  const rows = rowsOf((await claim(queued))[2]);
  if (!rows.length) return;
  const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts || 1);
  const sent = await sendBulk(rows);
  let outcomes;
  if (sent.kind === 'answered') outcomes = outcomesOf(rows, sent.results, lastAttempt);
  else if (sent.kind === 'refused' && !lastAttempt) outcomes = rows.map((row) => ({ i: row.index, o: 'retry' }));
  else if (sent.kind === 'ambiguous') outcomes = rows.map((row) => ({ i: row.index, o: 'unknown' }));
  else outcomes = rows.map((row) => ({ i: row.index, o: 'failed', e: sent.code || 'ATTEMPTS_EXHAUSTED' }));
  await redis.record(campaignId, token, String(Date.now()), JSON.stringify(outcomes));
  if (sent.kind === 'ambiguous') log(`job ${token}: ${rows.length} messages unknown (${sent.why})`);
  if (outcomes.some((outcome) => outcome.o === 'retry')) {
    throw new RetryLater(`provider refused (${sent.why || 'retryable codes'})`, sent.retryAfterMs);
  }
}

/** The incident's job: send what is still queued, and only then write that it was sent. */
async function processIncident(job) {
  const { campaignId, first, count } = job.data;
  const queued = rowsOf(await redis.loadQueued(campaignId, String(first), String(count)));
  const rows = queued.filter((row) => !processedMessages.has(`${campaignId}:${row.index}`));
  if (!rows.length) return;
  for (const row of rows) processedMessages.add(`${campaignId}:${row.index}`);
  await waitForRate(rows.length);
  const sent = await sendBulk(rows);
  if (sent.kind === 'refused' || sent.kind === 'ambiguous') {
    for (const row of rows) processedMessages.delete(`${campaignId}:${row.index}`);
    throw new RetryLater(`send failed (${sent.why}); the job is tried again`, sent.retryAfterMs);
  }
  const outcomes =
    sent.kind === 'answered'
      ? outcomesOf(rows, sent.results, true)
      : rows.map((row) => ({ i: row.index, o: 'failed', e: sent.code }));
  await redis.recordBlindly(campaignId, JSON.stringify(outcomes));
}

/**
 * Corrected maintenance: settles unknowns and expired claims, and gives a sending campaign
 * whose queued messages no job covers any more (its jobs exhausted their stalls or tries)
 * a new generation of jobs.
 */
function maintain(queue) {
  let lastRevive = 0;
  let running = false;
  setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const now = Date.now();
      const settled = await redis.settle(
        String(now - config.unknownSettleMs),
        String(now - config.submitLeaseMs),
        String(now),
        String(SETTLE_LIMIT),
      );
      if (settled > 0) log(`${settled} unknown outcomes settled as failed UNKNOWN_OUTCOME`);
      if (now - lastRevive >= REVIVE_EVERY_MS) {
        lastRevive = now;
        await revive(queue);
      }
    } catch (error) {
      log(`maintenance: ${error.message}`);
    } finally {
      running = false;
    }
  }, config.maintenanceMs);
}

async function revive(queue) {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused');
  if (Object.values(counts).some((n) => n > 0)) return;
  for (const cid of await redis.smembers('sms:campaigns')) {
    const c = `sms:campaign:${cid}`;
    const [status, contactCount] = await redis.hmget(c, 'status', 'contactCount');
    if (status !== 'sending' || (await redis.scard(`${c}:status:queued`)) === 0) continue;
    const generation = await redis.hincrby(c, 'generation', 1);
    log(`campaign ${cid}: queued messages and no job left; adding generation ${generation}`);
    await queue.addBulk(jobsOf(cid, generation, Number(contactCount)));
  }
}

const worker = new Worker(QUEUE, config.fixed ? processFixed : processIncident, {
  connection: redis,
  name: config.workerName,
  concurrency: 1,
  stalledInterval: config.stalledIntervalMs,
  lockDuration: config.lockDurationMs,
  // A job may be handed on after many kills; its messages are never lost to a cap here.
  maxStalledCount: 1000,
  settings: {
    backoffStrategy: (attemptsMade, type, error) =>
      (error && error.retryAfterMs) || Math.min(RETRY_DELAY_MS * 2 ** Math.max(0, attemptsMade - 1), RETRY_DELAY_MAX_MS),
  },
});
worker.on('error', (error) => log(`worker: ${error.message}`));
worker.on('failed', (job, error) => log(`job ${job && job.id} failed: ${error.message}`));

if (config.fixed) {
  const queue = new Queue(QUEUE, { connection: redis });
  queue.on('error', (error) => log(`queue: ${error.message}`));
  maintain(queue);
}
log(`worker started (fixed: ${config.fixed}, stalled interval ${config.stalledIntervalMs} ms, lock ${config.lockDurationMs} ms)`);
