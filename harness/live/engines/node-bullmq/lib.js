'use strict';
/**
 * What the API process and the worker processes share: configuration, the Redis
 * connection, the BullMQ queue's name and job options, and the Lua scripts that change
 * campaigns and messages.
 *
 * All state lives in Redis, so it outlives any Node process. Every change to a message is
 * one Lua script, which Redis runs atomically: the message's status and the campaign's
 * per-status sets (`sms:campaign:ID:status:STATUS`, holding message indexes) move together.
 * In the corrected version a campaign's numbers are the sizes of those sets — a recount of
 * its messages by status — and so is its completion; its cost is added in the script that
 * moves a message into a charged status, which happens once (terminal stays terminal).
 *
 * The incident's version (ENGINE_FIXED=0) keeps the first incident's bugs: counters
 * incremented once per delivery report, completion decided from those counters, a charge
 * per acceptance however many there were, and a worker that marks messages sent only after
 * the provider answered.
 */

const Redis = require('ioredis');

const env = process.env;

/** The configuration, from the environment (see README.md). */
const config = {
  fixed: env.ENGINE_FIXED === '1',
  port: Number(env.ENGINE_PORT || 8090),
  redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
  providerUrl: env.PROVIDER_URL || 'http://127.0.0.1:8091',
  apiKey: env.MITTO_API_KEY || 'key',
  trafficAccount: env.MITTO_TRAFFIC_ACCOUNT || 'ta',
  webhookToken: env.WEBHOOK_TOKEN || 'token',
  price: Number(env.PRICE || 55),
  unknownSettleMs: Number(env.UNKNOWN_SETTLE_MS || 2000),
  /** Messages per second across all workers when the account states no limit; 0: none. */
  sendRate: Number(env.SEND_RATE || 0),
  providerTimeoutMs: Number(env.PROVIDER_TIMEOUT_MS || 5000),
  /** A message `submitting` this long without an answer is treated as unknown. */
  submitLeaseMs: Number(env.SUBMIT_LEASE_MS || 10000),
  maintenanceMs: Number(env.MAINTENANCE_MS || 200),
  /** BullMQ's stalled-job check: a job whose lock lapsed is handed to another worker. */
  stalledIntervalMs: Number(env.STALLED_INTERVAL_MS || 1000),
  lockDurationMs: Number(env.LOCK_DURATION_MS || 2000),
  workerName: env.WORKER_NAME || `worker-${process.pid}`,
};

/** Messages per provider request, and so per BullMQ job. */
const BATCH = 20;

/** The BullMQ queue of batches. */
const QUEUE = 'sms-batches';

/** How often a job may be tried (429, 5xx, a refused connection) before its messages fail. */
const ATTEMPTS = 6;

/** The campaign statuses a message can be counted under. */
const STATUSES = ['queued', 'submitting', 'accepted', 'delivered', 'undelivered', 'failed', 'unknown', 'cancelled'];

/** Statuses whose message may still be sent or still be settled. */
const PENDING = ['queued', 'submitting', 'unknown'];

/** Statuses of a message the provider accepted. */
const SENT = ['accepted', 'delivered', 'undelivered'];

/**
 * A Redis connection. `worker` connections wait for Redis through an outage (as BullMQ
 * requires); the API's fail a request after a short retry, so an HTTP caller gets a 503
 * rather than a hung request.
 */
function connect({ worker }) {
  const options = worker
    ? { maxRetriesPerRequest: null }
    : { maxRetriesPerRequest: 2, connectTimeout: 2000 };
  const redis = new Redis(config.redisUrl, { ...options, retryStrategy: () => 200 });
  redis.on('error', (error) => log(`redis: ${error.message}`));
  defineScripts(redis);
  return redis;
}

/** A line in the engine's log. */
function log(line) {
  process.stderr.write(`${new Date().toISOString()} ${config.workerName}: ${line}\n`);
}

/** The Lua helpers every script starts with. Keys are built inside the scripts: one Redis. */
const PRELUDE = `
local function ckey(cid) return 'sms:campaign:' .. cid end
local function mkey(cid, index) return 'sms:msg:' .. cid .. ':' .. index end
local function skey(cid, status) return 'sms:campaign:' .. cid .. ':status:' .. status end
local function move(cid, index, from, to)
  redis.call('HSET', mkey(cid, index), 'status', to)
  redis.call('SMOVE', skey(cid, from), skey(cid, to), index)
end
local function pending(cid)
  return redis.call('SCARD', skey(cid, 'queued')) + redis.call('SCARD', skey(cid, 'submitting'))
    + redis.call('SCARD', skey(cid, 'unknown'))
end
-- Corrected: complete when no message is pending (a recount). Incident: when the
-- counters say so.
local function complete_if_done(cid, fixed)
  local c = ckey(cid)
  if redis.call('HGET', c, 'status') ~= 'sending' then return end
  local done
  if fixed == '1' then
    done = pending(cid) == 0
  else
    local n = redis.call('HMGET', c, 'sentCount', 'failedCount', 'contactCount')
    done = tonumber(n[1]) + tonumber(n[2]) >= tonumber(n[3])
  end
  if done then redis.call('HSET', c, 'status', 'completed') end
end
local function settle(cid, index, m, from, to)
  move(cid, index, from, to)
  redis.call('ZREM', 'sms:submitting', m)
  redis.call('ZREM', 'sms:unknown', m)
end
local function to_unknown(cid, index, m, now)
  move(cid, index, 'submitting', 'unknown')
  redis.call('HSET', m, 'unknownSince', now)
  redis.call('ZREM', 'sms:submitting', m)
  redis.call('ZADD', 'sms:unknown', now, m)
end
`;

/** The scripts, by name: ARGV only (the keys are derived from the campaign id). */
const SCRIPTS = {
  /** ARGV: cid, name, body, price, contacts (JSON array). 1 if created, 0 if it existed. */
  createCampaign: `
local cid, body, price = ARGV[1], ARGV[3], ARGV[4]
local c = ckey(cid)
if redis.call('EXISTS', c) == 1 then return 0 end
local contacts = cjson.decode(ARGV[5])
redis.call('HSET', c, 'id', cid, 'name', ARGV[2], 'body', body, 'status', 'draft', 'contactCount', #contacts,
  'sentCount', 0, 'failedCount', 0, 'cost', 0, 'generation', 0)
local indexes = {}
for i, phone in ipairs(contacts) do
  local index = string.format('%06d', i - 1)
  redis.call('HSET', mkey(cid, index), 'campaign', cid, 'index', index, 'destination', phone, 'body', body,
    'price', price, 'status', 'queued')
  indexes[#indexes + 1] = index
end
for from = 1, #indexes, 1000 do
  redis.call('SADD', skey(cid, 'queued'), unpack(indexes, from, math.min(from + 999, #indexes)))
end
redis.call('SADD', 'sms:campaigns', cid)
return 1`,

  /**
   * ARGV: cid, action (send, pause, resume, cancel), fixed. {outcome, status, generation}:
   * outcome `ok`, `conflict` (the campaign's status does not allow it) or `missing`. A move
   * into sending starts a new generation of jobs; a repeat of an action that already took
   * effect is `ok`, so a caller may retry one whose answer it lost.
   */
  campaignAction: `
local cid, action, fixed = ARGV[1], ARGV[2], ARGV[3]
local c = ckey(cid)
local status = redis.call('HGET', c, 'status')
if not status then return {'missing', '', 0} end
local function to_sending()
  redis.call('HINCRBY', c, 'generation', 1)
  redis.call('HSET', c, 'status', 'sending')
  complete_if_done(cid, fixed)
end
local ok = true
if action == 'send' then
  if status == 'draft' then to_sending() elseif status == 'cancelled' then ok = false end
elseif action == 'pause' then
  if status == 'sending' then redis.call('HSET', c, 'status', 'paused') elseif status ~= 'paused' then ok = false end
elseif action == 'resume' then
  if status == 'paused' then to_sending() elseif status ~= 'sending' and status ~= 'completed' then ok = false end
elseif action == 'cancel' then
  if status == 'draft' or status == 'sending' or status == 'paused' then
    redis.call('HSET', c, 'status', 'cancelled')
    for _, index in ipairs(redis.call('SMEMBERS', skey(cid, 'queued'))) do
      move(cid, index, 'queued', 'cancelled')
    end
  elseif status ~= 'cancelled' then ok = false end
else
  return {'missing', status, 0}
end
return {ok and 'ok' or 'conflict', redis.call('HGET', c, 'status'), tonumber(redis.call('HGET', c, 'generation'))}`,

  /**
   * Corrected claim. ARGV: cid, token (the job's id), now, first, count, limit. A message
   * of the range still submitting under this same token was claimed by an earlier run of
   * this job whose worker died (BullMQ handed the stalled job on): the request may have
   * left, so it becomes unknown and is never sent again. Then, if the campaign is sending,
   * up to `limit` of the range's queued messages move to submitting under the token (0:
   * only count them). {lost, queued before the claim, {index, destination, body, ...}}.
   */
  claim: `
local cid, token, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local first, count, limit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local sending = redis.call('HGET', ckey(cid), 'status') == 'sending'
local claimed, lost, queued = {}, 0, 0
for i = first, first + count - 1 do
  local index = string.format('%06d', i)
  local m = mkey(cid, index)
  local f = redis.call('HMGET', m, 'status', 'claim', 'destination', 'body')
  if f[1] == 'submitting' and f[2] == token then
    to_unknown(cid, index, m, now)
    lost = lost + 1
  elseif f[1] == 'queued' and sending then
    queued = queued + 1
    if #claimed < 3 * limit then
      move(cid, index, 'queued', 'submitting')
      redis.call('HSET', m, 'claim', token)
      redis.call('ZADD', 'sms:submitting', now, m)
      claimed[#claimed + 1] = index
      claimed[#claimed + 1] = f[3]
      claimed[#claimed + 1] = f[4]
    end
  end
end
return {lost, queued, claimed}`,

  /**
   * Corrected record of a provider answer. ARGV: cid, token, now, outcomes (JSON
   * [{i: index, o: accepted|failed|retry|unknown, id: provider id, e: error code}]). Only
   * a message still submitting under the token, or unknown, is moved (terminal stays
   * terminal); an acceptance is charged once, when its message moves to accepted, and a
   * report parked before it arrived is applied.
   */
  record: `
local cid, token, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local c = ckey(cid)
for _, r in ipairs(cjson.decode(ARGV[4])) do
  local m = mkey(cid, r.i)
  local f = redis.call('HMGET', m, 'status', 'claim', 'price')
  local mine = f[1] == 'submitting' and f[2] == token
  local open = mine or f[1] == 'unknown'
  if r.o == 'accepted' then
    redis.call('SET', 'sms:provider:' .. r.id, m)
    redis.call('HSET', m, 'providerId', r.id)
    if open then
      settle(cid, r.i, m, f[1], 'accepted')
      redis.call('HINCRBY', c, 'cost', f[3])
      local parked = redis.call('GET', 'sms:parked:' .. r.id)
      if parked then
        move(cid, r.i, 'accepted', parked)
        redis.call('DEL', 'sms:parked:' .. r.id)
      end
    end
  elseif r.o == 'failed' and open then
    settle(cid, r.i, m, f[1], 'failed')
    redis.call('HSET', m, 'error', r.e)
  elseif r.o == 'retry' and mine then
    settle(cid, r.i, m, 'submitting', 'queued')
    redis.call('HDEL', m, 'claim')
  elseif r.o == 'unknown' and mine then
    to_unknown(cid, r.i, m, now)
  end
end
complete_if_done(cid, '1')
return 1`,

  /**
   * Corrected maintenance. ARGV: unknown cutoff, lease cutoff, now, limit. Unknowns older
   * than the settle delay fail as UNKNOWN_OUTCOME, charged (the provider may have sent
   * them); messages submitting past the lease (their job gone) become unknown.
   */
  settle: `
local cutoff, lease_cutoff, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local touched, n = {}, 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', 'sms:unknown', '-inf', cutoff, 'LIMIT', 0, limit)) do
  local f = redis.call('HMGET', m, 'status', 'campaign', 'index', 'price')
  if f[1] == 'unknown' then
    settle(f[2], f[3], m, 'unknown', 'failed')
    redis.call('HSET', m, 'error', 'UNKNOWN_OUTCOME')
    redis.call('HINCRBY', ckey(f[2]), 'cost', f[4])
    redis.call('SADD', ckey(f[2]) .. ':unknown_outcome', f[3])
    touched[f[2]] = true
    n = n + 1
  end
  redis.call('ZREM', 'sms:unknown', m)
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', 'sms:submitting', '-inf', lease_cutoff, 'LIMIT', 0, limit)) do
  local f = redis.call('HMGET', m, 'status', 'campaign', 'index')
  if f[1] == 'submitting' then to_unknown(f[2], f[3], m, now) else redis.call('ZREM', 'sms:submitting', m) end
end
for cid in pairs(touched) do complete_if_done(cid, '1') end
return n`,

  /**
   * A delivery report. ARGV: provider id, deliveryStatus, fixed. Corrected: a final report
   * moves an accepted message once, and one for an id not yet recorded is parked until
   * its acceptance is. Incident: every report writes the status and bumps a counter.
   */
  report: `
local pid, delivery, fixed = ARGV[1], ARGV[2], ARGV[3]
local final = (delivery == 'Delivered' and 'delivered') or (delivery == 'Failure' and 'undelivered') or nil
if not final then return 0 end
local m = redis.call('GET', 'sms:provider:' .. pid)
if not m then
  if fixed == '1' then redis.call('SET', 'sms:parked:' .. pid, final, 'NX', 'EX', 3600) end
  return 0
end
local f = redis.call('HMGET', m, 'status', 'campaign', 'index')
if fixed == '1' then
  if f[1] == 'accepted' then move(f[2], f[3], 'accepted', final) end
  return 1
end
if f[1] ~= final then move(f[2], f[3], f[1], final) end
redis.call('HINCRBY', ckey(f[2]), final == 'delivered' and 'sentCount' or 'failedCount', 1)
complete_if_done(f[2], '0')
return 1`,

  /** Incident: the range's queued messages, if the campaign is sending; nothing is marked. */
  loadQueued: `
local cid, first, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('HGET', ckey(cid), 'status') ~= 'sending' then return {} end
local rows = {}
for i = first, first + count - 1 do
  local index = string.format('%06d', i)
  local f = redis.call('HMGET', mkey(cid, index), 'status', 'destination', 'body')
  if f[1] == 'queued' then
    rows[#rows + 1] = index
    rows[#rows + 1] = f[2]
    rows[#rows + 1] = f[3]
  end
end
return rows`,

  /**
   * Incident: records an answer after the fact. ARGV: cid, outcomes (as for record). Every
   * acceptance is charged, however many times the message was sent; a refusal bumps the
   * failed counter.
   */
  recordBlindly: `
local cid = ARGV[1]
local c = ckey(cid)
for _, r in ipairs(cjson.decode(ARGV[2])) do
  local m = mkey(cid, r.i)
  local f = redis.call('HMGET', m, 'status', 'price')
  if r.o == 'accepted' then
    if f[1] ~= 'accepted' then move(cid, r.i, f[1], 'accepted') end
    redis.call('SET', 'sms:provider:' .. r.id, m)
    redis.call('HSET', m, 'providerId', r.id)
    redis.call('HINCRBY', c, 'cost', f[2])
  elseif r.o == 'failed' then
    if f[1] ~= 'failed' then move(cid, r.i, f[1], 'failed') end
    redis.call('HSET', m, 'error', r.e)
    redis.call('HINCRBY', c, 'failedCount', 1)
  end
end
complete_if_done(cid, '0')
return 1`,

  /**
   * Reserves send slots for ARGV[1] messages against the rate limit — the traffic
   * account's, or else the engine's own ARGV[2] messages/s — shared by every worker through
   * Redis: each message takes 1/rate s of one virtual schedule. The ms to wait before sending.
   */
  reserveRate: `
local n = tonumber(ARGV[1])
local rate = tonumber(redis.call('HGET', 'sms:account', 'rateLimitPerS') or ARGV[2])
if rate <= 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local start = math.max(tonumber(redis.call('GET', 'sms:rate:next') or '0'), now)
redis.call('SET', 'sms:rate:next', tostring(start + n * 1000 / rate))
return math.floor(start - now)`,
};

function defineScripts(redis) {
  for (const [name, body] of Object.entries(SCRIPTS)) {
    redis.defineCommand(name, { numberOfKeys: 0, lua: PRELUDE + body });
  }
}

/**
 * The BullMQ jobs of one generation of a sending campaign: one per batch of message
 * indexes. The id names the campaign, the generation and the batch, so adding the same
 * generation again (a double click, a retried request) adds nothing.
 */
function jobsOf(cid, generation, contactCount) {
  const jobs = [];
  for (let first = 0; first < contactCount; first += BATCH) {
    jobs.push({
      name: 'batch',
      data: { campaignId: cid, first, count: Math.min(BATCH, contactCount - first) },
      opts: { jobId: `${cid}-g${generation}-${first}`, attempts: ATTEMPTS, backoff: { type: 'provider' } },
    });
  }
  return jobs;
}

/**
 * A campaign as the API shows it, read in one MULTI (one consistent moment). Corrected:
 * its numbers are counts of its messages by status. Incident: its counters, and a
 * progress computed from them without a bound.
 */
async function campaignView(redis, cid) {
  const c = `sms:campaign:${cid}`;
  const multi = redis.multi().hgetall(c);
  for (const status of STATUSES) multi.scard(`${c}:status:${status}`);
  multi.scard(`${c}:unknown_outcome`);
  const results = (await multi.exec()).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
  const campaign = results[0];
  if (!campaign || !campaign.id) return null;
  const counts = Object.fromEntries(STATUSES.map((status, i) => [status, results[i + 1]]));
  const total = Number(campaign.contactCount);
  const view = {
    id: campaign.id,
    name: campaign.name,
    status: campaign.status,
    contactCount: total,
    cost: Number(campaign.cost),
  };
  if (config.fixed) {
    const pending = PENDING.reduce((sum, status) => sum + counts[status], 0);
    view.sentCount = SENT.reduce((sum, status) => sum + counts[status], 0);
    view.failedCount = counts.failed;
    view.unknownOutcome = results[STATUSES.length + 1];
    view.progress = total ? Math.floor(((total - pending) * 100) / total) : 100;
    view.counts = counts;
  } else {
    view.sentCount = Number(campaign.sentCount);
    view.failedCount = Number(campaign.failedCount);
    view.unknownOutcome = 0;
    view.progress = total ? Math.floor(((view.sentCount + view.failedCount) * 100) / total) : 100;
  }
  return view;
}

module.exports = { config, QUEUE, connect, log, jobsOf, campaignView };
