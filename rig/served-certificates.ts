/**
 * The certificate a service presents on the network, read the way a client
 * meets it: TLS straight away on etcd and Patroni ports, PostgreSQL's
 * SSLRequest first on 5432. Used to prove a rotation changed what is served,
 * not just what is on disk.
 */
import { connect as netConnect, Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';

/** The ports each identity is served on (client identities are not served). */
export const SERVED_PORTS: Readonly<Record<string, number>> = {
  'etcd-server': 2379,
  'etcd-peer': 2380,
  'postgres-server': 5432,
  'patroni-rest': 8008,
};

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

function postgresSslSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    const timer = setTimeout(
      () => socket.destroy(new Error(`${host}:${port}: timed out`)),
      timeoutMs,
    );
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('connect', () => socket.write(SSL_REQUEST));
    socket.once('data', (answer) => {
      clearTimeout(timer);
      if (answer[0] !== 0x53) {
        socket.destroy();
        reject(new Error(`${host}:${port}: PostgreSQL refused SSL`));
      } else resolve(socket);
    });
  });
}

/** Serial (upper-case hex) of the leaf certificate served at host:port. */
export async function servedSerial(host: string, port: number, timeoutMs = 5000): Promise<string> {
  const socket = port === 5432 ? await postgresSslSocket(host, port, timeoutMs) : undefined;
  return new Promise((resolve, reject) => {
    // Who signed it is not the question here: the serial is compared, not trusted.
    const tls: TLSSocket = tlsConnect({
      ...(socket ? { socket } : { host, port }),
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    tls.once('secureConnect', () => {
      const serial = tls.getPeerCertificate().serialNumber;
      tls.destroy();
      if (serial) resolve(serial.toUpperCase());
      else reject(new Error(`${host}:${port}: no certificate presented`));
    });
    tls.once('timeout', () => tls.destroy(new Error(`${host}:${port}: TLS timed out`)));
    tls.once('error', reject);
  });
}
