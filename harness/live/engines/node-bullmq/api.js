'use strict';
/**
 * The engine's API process: campaigns (create with contacts, send, pause, resume, cancel,
 * read), the traffic account's rate limit, the provider's delivery-report webhook, and
 * /health. A campaign's move into `sending` (send, resume) adds one BullMQ job per batch of
 * its messages, under a new generation; a repeat of the action adds that generation's jobs
 * again, which BullMQ keeps once by their ids.
 */

const http = require('node:http');
const { Queue } = require('bullmq');
const { config, QUEUE, connect, log, jobsOf, campaignView } = require('./lib');

const redis = connect({ worker: false });
const queue = new Queue(QUEUE, { connection: connect({ worker: false }) });
queue.on('error', (error) => log(`queue: ${error.message}`));

/** Bodies larger than this are refused (a campaign of 10 000 contacts is about 200 kB). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** An answer other than 200 that the request itself earned: `{"error": {code, message}}`. */
class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function answer(response, status, body) {
  const data = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  response.end(data);
}

async function readJson(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'TOO_LARGE', 'body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'body is not JSON');
  }
}

async function createCampaign(body) {
  if (typeof body.name !== 'string' || typeof body.body !== 'string' || !Array.isArray(body.contacts)) {
    throw new HttpError(400, 'BAD_REQUEST', 'expected {name, body, contacts: [phone, ...]}');
  }
  const cid = `c_${body.name}`;
  await redis.createCampaign(cid, body.name, body.body, String(config.price), JSON.stringify(body.contacts));
  return [201, await campaignView(redis, cid)];
}

async function campaignAction(cid, action) {
  const [outcome, status, generation] = await redis.campaignAction(cid, action, config.fixed ? '1' : '0');
  if (outcome === 'missing') throw new HttpError(404, 'NOT_FOUND', `no campaign ${cid} or no action ${action}`);
  if (outcome === 'conflict') throw new HttpError(409, 'CONFLICT', `cannot ${action} a ${status} campaign`);
  const view = await campaignView(redis, cid);
  if (status === 'sending') await queue.addBulk(jobsOf(cid, generation, view.contactCount));
  return [200, view];
}

async function setAccount(body) {
  const rate = Number(body.rateLimitPerS);
  if (rate > 0) await redis.hset('sms:account', 'name', String(body.name), 'rateLimitPerS', String(rate));
  else await redis.hdel('sms:account', 'rateLimitPerS');
  return [201, { name: body.name, rateLimitPerS: rate > 0 ? rate : null }];
}

async function webhook(url, request) {
  const reports = await readJson(request);
  if (url.searchParams.get('token') !== config.webhookToken) throw new HttpError(401, 'UNAUTHORIZED', 'bad token');
  for (const report of Array.isArray(reports) ? reports : [reports]) {
    if (report && typeof report.messageId === 'string' && typeof report.deliveryStatus === 'string') {
      await redis.report(report.messageId, report.deliveryStatus, config.fixed ? '1' : '0');
    }
  }
  return [200, { ok: true }];
}

async function route(request) {
  const url = new URL(request.url, 'http://localhost');
  const parts = url.pathname.split('/').filter(Boolean);
  const method = request.method;
  if (method === 'GET' && parts.length === 1 && parts[0] === 'health') {
    await redis.ping();
    return [200, { ok: true, fixed: config.fixed }];
  }
  if (method === 'GET' && parts.length === 2 && parts[0] === 'campaigns') {
    const view = await campaignView(redis, parts[1]);
    if (!view) throw new HttpError(404, 'NOT_FOUND', `no campaign ${parts[1]}`);
    return [200, view];
  }
  if (method === 'POST' && parts.length >= 3 && parts[0] === 'v1' && parts[1] === 'webhooks' && parts[2] === 'mitto') {
    return webhook(url, request);
  }
  if (method === 'POST' && parts.length === 1 && parts[0] === 'campaigns') return createCampaign(await readJson(request));
  if (method === 'POST' && parts.length === 1 && parts[0] === 'accounts') return setAccount(await readJson(request));
  if (method === 'POST' && parts.length === 3 && parts[0] === 'campaigns') {
    await readJson(request);
    return campaignAction(parts[1], parts[2]);
  }
  throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${url.pathname}`);
}

const server = http.createServer((request, response) => {
  route(request).then(
    ([status, body]) => answer(response, status, body),
    (error) => {
      if (error instanceof HttpError) {
        answer(response, error.status, { error: { code: error.code, message: error.message } });
      } else {
        // Redis unreachable, mostly: the caller may retry.
        log(`api: ${error.stack || error}`);
        answer(response, 503, { error: { code: 'UNAVAILABLE', message: String(error.message || error) } });
      }
    },
  );
});
server.keepAliveTimeout = 5000;
server.listen(config.port, '127.0.0.1', () => log(`api listening on 127.0.0.1:${config.port} (fixed: ${config.fixed})`));
