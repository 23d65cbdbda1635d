/**
 * The certificate a service presents on the network, read the way a client
 * meets it: TLS straight away on etcd and Patroni ports, PostgreSQL's
 * SSLRequest first on 5432. Used to prove a rotation changed what is served,
 * not just what is on disk. The probe runs inside the serving node, against
 * its own address: the rig's packet filters admit only the template's flows,
 * and the test host is not one of them for etcd or Patroni.
 */
import type { NodeExec } from './types';

/** The ports each identity is served on (client identities are not served). */
export const SERVED_PORTS: Readonly<Record<string, number>> = {
  'etcd-server': 2379,
  'etcd-peer': 2380,
  'postgres-server': 5432,
  'patroni-rest': 8008,
  pgbackrest: 8432,
  // PEM's Apache site (the rig's PEM double writes it where PEM does).
  'pem-web': 8443,
};

// Who signed it is not the question here: the serial is compared, not trusted.
// No client certificate is offered: etcd (TLS 1.3) ends the session with an
// alert after its certificate was read, so s_client's exit status is moot.
const PROBE = [
  'starttls=""',
  '[ "$2" != 5432 ] || starttls="-starttls postgres"',
  // $starttls unquoted: two words or none.
  'openssl s_client -connect "$1:$2" $starttls </dev/null 2>/dev/null | openssl x509 -noout -serial',
].join('\n');

/** Serial (upper-case hex) of the leaf certificate `node` serves at address:port. */
export async function servedSerial(
  exec: NodeExec,
  node: string,
  address: string,
  port: number,
  timeoutMs = 10_000,
): Promise<string> {
  const result = await exec(node, {
    argv: ['bash', '-c', PROBE, 'probe', address, String(port)],
    timeoutMs,
  });
  const serial = /^serial=([0-9A-Fa-f]+)$/m.exec(result.stdout)?.[1];
  if (result.exitCode !== 0 || !serial) {
    throw new Error(
      `${node} ${address}:${port}: no certificate read (${result.timedOut ? 'timed out' : `exit ${result.exitCode}`}) ${result.stderr.trim()}`,
    );
  }
  return serial.toUpperCase();
}
