// Infobip's official Node SDK (@infobip-api/sdk, pinned in .ci/official-clients) against
// `smsim provider`: what a team's own integration tests would do with the simulated
// Infobip.
//
//     NODE_PATH=.../node_modules node infobip_client.js BASE_URL API_KEY
//
// Prints one line per check and exits 0 only if every check passed.
'use strict';
const http = require('http');
const { Infobip, AuthType } = require('@infobip-api/sdk');

const [base, apiKey] = process.argv.slice(2);
const results = [];
function check(name, ok, detail) {
  results.push(Boolean(ok));
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + JSON.stringify(detail)}`);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  // Pushed reports land here.
  const pushed = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      try {
        pushed.push(...JSON.parse(body).results);
      } catch (error) {
        pushed.push({ unreadable: body });
      }
      response.writeHead(200);
      response.end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const notifyUrl = `http://127.0.0.1:${server.address().port}/reports?token=t`;

  const infobip = new Infobip({ baseUrl: base, apiKey, authType: AuthType.ApiKey });
  const sms = infobip.channels.sms;

  const withFrom = await sms.send({
    messages: [{
      destinations: [{ to: '306910000001' }, { to: '306910000002' }],
      from: 'ACME', text: 'hello', notifyUrl, callbackData: 'campaign-7',
    }],
  });
  const answered = withFrom.data || {};
  check('send to several destinations with from, notifyUrl and callbackData',
    withFrom.status === 200 && answered.bulkId && (answered.messages || []).length === 2
      && answered.messages.every((m) => m.messageId && m.status && m.status.groupName === 'PENDING'), answered);

  const withoutFrom = await sms.send({
    messages: [{ destinations: [{ to: '306910000003', messageId: 'pull-me' }], text: 'no sender, no notifyUrl' }],
  });
  check('send without from', withoutFrom.status === 200 && withoutFrom.data.messages[0].messageId === 'pull-me',
    withoutFrom.data);

  const invalid = await sms.send({ messages: [{ destinations: [{ to: 'not-a-number' }], text: 'x' }] });
  check('an invalid destination is rejected in the answer', invalid.status === 200
    && invalid.data.messages[0].status.name === 'REJECTED_DESTINATION', invalid.data);

  const wrongKey = await new Infobip({ baseUrl: base, apiKey: 'wrong', authType: AuthType.ApiKey }).channels.sms
    .send({ messages: [{ destinations: [{ to: '306910000004' }], text: 'x' }] });
  const refusal = wrongKey.response || {};
  check('a wrong API key is 401 with a service exception', refusal.status === 401
    && refusal.data.requestError.serviceException.messageId === 'UNAUTHORIZED', refusal.data);

  // Pushed reports: one final report per message, echoing callbackData.
  for (let i = 0; i < 200 && pushed.filter((r) => r.status && r.status.groupName !== 'PENDING').length < 2; i++) {
    await sleep(100);
  }
  const finals = pushed.filter((r) => r.status && r.status.groupName !== 'PENDING');
  check('pushed final reports for both messages', new Set(finals.map((r) => r.messageId)).size === 2, pushed);
  check('pushed reports carry what Infobip documents', finals.every((r) => r.bulkId === answered.bulkId
    && r.callbackData === 'campaign-7' && r.mccMnc && r.sentAt && r.doneAt && r.smsCount === 1
    && r.price && r.price.currency && r.error && r.error.description), finals);

  const logs = await sms.logs.get({ bulkId: answered.bulkId });
  const logged = (logs.data && logs.data.results) || [];
  check('logs filtered by bulkId', logs.status === 200 && logged.length === 2
    && logged.every((l) => l.bulkId === answered.bulkId), logs.data);
  check('logs show the final status once reported', logged.every((l) => l.status.groupName !== 'PENDING'
    && l.doneAt && l.sentAt && l.price), logged);
  const one = await sms.logs.get({ messageId: 'pull-me' });
  check('logs filtered by messageId', one.data.results.length === 1 && one.data.results[0].to === '306910000003',
    one.data);

  // Pulled reports: the message sent without notifyUrl, once, when due.
  let pulled = [];
  for (let i = 0; i < 200 && pulled.length === 0; i++) {
    const reports = await sms.reports.get({ messageId: 'pull-me' });
    pulled = (reports.data && reports.data.results) || [];
    if (pulled.length === 0) await sleep(100);
  }
  check('GET /sms/1/reports gives the pulled report', pulled.length === 1 && pulled[0].messageId === 'pull-me'
    && pulled[0].status.groupName !== 'PENDING', pulled);
  const again = await sms.reports.get({ messageId: 'pull-me' });
  check('a pulled report is given once', again.data.results.length === 0, again.data);

  server.close();
  console.log(JSON.stringify({ checks: results.length, failed: results.filter((ok) => !ok).length }));
  process.exit(results.every((ok) => ok) ? 0 : 1);
}

main().catch((error) => {
  console.log(`FAIL unexpected: ${error && error.stack}`);
  process.exit(1);
});
