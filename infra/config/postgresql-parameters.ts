import { InvalidValue, Setting } from './setting';
import { POSTGRESQL_17_PARAMETERS } from './postgresql-17-parameters';

export type ParameterValue = string | number | boolean;
/** PostgreSQL parameters a user sets, by name; applied to every member. */
export type PostgresqlParameters = Readonly<Record<string, ParameterValue>>;

const PATRONI_SETS = 'Patroni sets it for each member';
const REPLICATION = 'pem-ha sets it for Patroni replication';
const TLS_AND_AUTH = "pem-ha sets it (the cluster's TLS and authentication)";
const ARCHIVING = 'pem-ha archives to the backup repository with it';

/** Parameters pem-ha or Patroni own, and what to change instead. */
const MANAGED: Readonly<Record<string, string>> = {
  archive_mode: ARCHIVING,
  archive_command: ARCHIVING,
  archive_library: ARCHIVING,
  archive_timeout: 'set archiveTimeoutSeconds instead',
  max_wal_size: 'pem-ha sizes it from dataVolumeSizeGiB',
  max_slot_wal_keep_size: 'pem-ha sizes it from dataVolumeSizeGiB',
  synchronous_standby_names: 'Patroni manages it: set synchronousMode instead',
  ssl: TLS_AND_AUTH,
  ssl_cert_file: TLS_AND_AUTH,
  ssl_key_file: TLS_AND_AUTH,
  ssl_ca_file: TLS_AND_AUTH,
  password_encryption: TLS_AND_AUTH,
  unix_socket_directories: TLS_AND_AUTH,
  wal_level: REPLICATION,
  hot_standby: REPLICATION,
  wal_log_hints: REPLICATION,
  max_wal_senders: REPLICATION,
  max_replication_slots: REPLICATION,
  wal_keep_size: REPLICATION,
  listen_addresses: PATRONI_SETS,
  port: PATRONI_SETS,
  data_directory: PATRONI_SETS,
  config_file: PATRONI_SETS,
  hba_file: PATRONI_SETS,
  ident_file: PATRONI_SETS,
  cluster_name: PATRONI_SETS,
  primary_conninfo: PATRONI_SETS,
  primary_slot_name: PATRONI_SETS,
  restore_command: PATRONI_SETS,
  recovery_end_command: PATRONI_SETS,
  archive_cleanup_command: PATRONI_SETS,
};

// PostgreSQL matches names without regard to case (TimeZone, timezone).
const NAME = /^[a-z][a-z0-9_]{0,62}$/i;
/** `extension.setting`: an extension's own parameter, which PostgreSQL accepts by its prefix. */
const CUSTOM_NAME = /^[a-z][a-z0-9_]{0,30}\.[a-z][a-z0-9_]{0,62}$/i;
const MAX_PARAMETERS = 100;
const MAX_TEXT = 1024;
/** They travel as a node document parameter, whose document has a size bound. */
const MAX_JSON = 8192;

/** Why a name is not accepted, or undefined. */
function refusal(name: string): string | undefined {
  if (!NAME.test(name) && !CUSTOM_NAME.test(name)) {
    return `${JSON.stringify(name)} is not a parameter name (letters, digits, underscores; extension.setting for an extension's)`;
  }
  const key = name.toLowerCase();
  if (key.startsWith('recovery_target'))
    return `${name}: the restore runbook sets recovery targets`;
  const managed = MANAGED[key];
  return managed === undefined ? undefined : `${name}: ${managed}`;
}

function checkValue(name: string, value: unknown): ParameterValue {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  // Text goes into postgresql.conf and the node documents: one line, printable.
  if (typeof value === 'string' && value.length <= MAX_TEXT && /^[\x20-\x7e]*$/.test(value)) {
    return value;
  }
  throw new InvalidValue(
    `${name}: its value must be a number, true/false or printable text of at most ${MAX_TEXT} characters`,
    true,
  );
}

/** A JSON object of PostgreSQL parameters (a string on the command line). */
export function postgresqlParametersSetting(description: string): Setting<PostgresqlParameters> {
  return {
    description,
    allowed: `a JSON object (at most ${MAX_JSON} characters) of at most ${MAX_PARAMETERS} PostgreSQL parameters, name to value, e.g. {"max_connections": 300, "log_min_duration_statement": "2s"}; parameters pem-ha or Patroni set (archiving, replication, TLS, listen addresses, recovery, max_wal_size) are refused`,
    defaultValue: {},
    parse(raw) {
      let value = raw;
      if (typeof raw === 'string') {
        try {
          value = JSON.parse(raw);
        } catch {
          throw new InvalidValue('not JSON');
        }
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new InvalidValue('not an object');
      }
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length > MAX_PARAMETERS) throw new InvalidValue('too many parameters');
      const parameters: Record<string, ParameterValue> = {};
      const seen = new Set<string>();
      for (const [name, given] of entries.sort(([a], [b]) => a.localeCompare(b))) {
        const refused = refusal(name);
        if (refused) throw new InvalidValue(refused, true);
        if (seen.has(name.toLowerCase())) {
          throw new InvalidValue(`${name} is given twice (names are not case-sensitive)`, true);
        }
        seen.add(name.toLowerCase());
        parameters[name] = checkValue(name, given);
      }
      if (JSON.stringify(parameters).length > MAX_JSON) {
        throw new InvalidValue(`more than ${MAX_JSON} characters of JSON`, true);
      }
      return parameters;
    },
  };
}

/**
 * Whether changing `name` needs a PostgreSQL restart: `yes` for a postmaster
 * parameter of PostgreSQL 17, `unknown` for an extension's or a name 17 does
 * not have (other majors add and drop a few), `no` otherwise.
 */
export function needsRestart(name: string): 'yes' | 'no' | 'unknown' {
  const context = CONTEXT_OF.get(name.toLowerCase());
  if (context === undefined) return 'unknown';
  return context === 'postmaster' ? 'yes' : 'no';
}

export function isPostgresql17Parameter(name: string): boolean {
  return CONTEXT_OF.has(name.toLowerCase());
}

const CONTEXT_OF = new Map<string, string>(
  Object.entries(POSTGRESQL_17_PARAMETERS).flatMap(([context, names]) =>
    names.map((name): [string, string] => [name.toLowerCase(), context]),
  ),
);
