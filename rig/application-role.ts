/**
 * The rig's application role. pg_hba admits the administrative roles
 * (patroni_super, pemsuper, ...) only from the nodes themselves, so the rig's
 * clients log in through the endpoints as an application would: as
 * `rig_app`, made on the primary after the bootstrap as a user would make
 * their own roles (on a backend, over the local socket).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const APPLICATION_ROLE = 'rig_app';

const PASSWORD_FILE = 'application-password';

/** The role's password, made once per rig and kept in its state directory (0600). */
export function applicationPassword(stateDir: string): string {
  const file = join(stateDir, PASSWORD_FILE);
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(24).toString('hex'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

/** A SCRAM-SHA-256 verifier (RFC 7677, PostgreSQL's format): the server never sees the password. */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096) {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  const b64 = (buffer: Buffer) => buffer.toString('base64');
  return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/**
 * The statements that make (or refresh) the role: it may read and write
 * every table, whoever made it, and create tables in `public`, as the tests
 * need; it is no superuser and has no replication or role rights.
 */
export function applicationRoleSql(password: string): string {
  return [
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APPLICATION_ROLE}') THEN
         CREATE ROLE ${APPLICATION_ROLE} LOGIN;
       END IF;
     END $$;`,
    `ALTER ROLE ${APPLICATION_ROLE} PASSWORD '${scramVerifier(password)}';`,
    `GRANT pg_read_all_data, pg_write_all_data TO ${APPLICATION_ROLE};`,
    `GRANT CREATE ON SCHEMA public TO ${APPLICATION_ROLE};`,
  ].join('\n');
}

/** psql over a backend's local socket as patroni_super (the documents' own way in). */
export function localPsqlArgv(...args: string[]): string[] {
  return [
    'runuser',
    '-u',
    'postgres',
    '--',
    'psql',
    '-h',
    '/var/run/postgresql',
    '-U',
    'patroni_super',
    '-d',
    'postgres',
    '-XAtq',
    '-v',
    'ON_ERROR_STOP=1',
    ...args,
  ];
}
