// An independent webhook receiver: every delivery is verified with the
// `standardwebhooks` npm package (the reference implementation), once per
// secret it was told, and reported as one JSON line on stdout:
//   {"id", "type", "signatures", "verified_with": [secret indexes], "error"}
// The first line is {"listening": port}. POST /_secrets with a JSON array
// of whsec_ secrets sets the secrets (e.g. the old and the new during a
// rotation). A delivery no secret verifies is answered 400, else 200.
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

let secrets = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.url === '/_secrets') {
      secrets = JSON.parse(body);
      res.writeHead(204).end();
      return;
    }
    const headers = {
      'webhook-id': req.headers['webhook-id'] ?? '',
      'webhook-timestamp': req.headers['webhook-timestamp'] ?? '',
      'webhook-signature': req.headers['webhook-signature'] ?? '',
    };
    const verifiedWith = [];
    let payload = null;
    let error = null;
    secrets.forEach((secret, i) => {
      try {
        payload = new Webhook(secret).verify(body, headers);
        verifiedWith.push(i);
      } catch (e) {
        error = String(e?.message ?? e);
      }
    });
    const signatures = headers['webhook-signature'].split(' ').filter(Boolean).length;
    console.log(JSON.stringify({
      id: headers['webhook-id'],
      type: payload?.type ?? null,
      signatures,
      verified_with: verifiedWith,
      error: verifiedWith.length > 0 ? null : error,
    }));
    res.writeHead(verifiedWith.length > 0 ? 200 : 400).end();
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
