/**
 * A self-signed certificate for localhost, made with the openssl CLI (Debian's openssl):
 * `key.pem` and `cert.pem` in `dir`, valid two days. The certificate is its own CA.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

export async function selfSignedCertificate(
  dir: string,
  subjectAltName = 'DNS:localhost',
): Promise<{ key: string; cert: string }> {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    `subjectAltName=${subjectAltName}`,
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { key, cert };
}
