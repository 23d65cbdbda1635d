import { InvalidInputError } from './errors';
import type { Entitlement } from './pki';

/**
 * What an outside agent's database user may be called: a PostgreSQL role name
 * that needs no quoting (it is the certificate's CN and the `cert` login).
 */
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Roles the cluster itself logs in as, or that PEM and etcd give rights to:
 * an outside agent's certificate naming one could act as the cluster. Node
 * names (etcd-1, backend-2 ...) hold a '-' and cannot match ROLE_NAME.
 */
export const CLUSTER_ROLE_NAMES: readonly string[] = [
  'postgres',
  'patroni_super',
  'patroni_rep',
  'patroni_rew',
  'patroni_api',
  'pem_ha_monitor',
  'pemsuper',
  'pem_agent',
  'pem_user',
  'pem_admin',
  'pem_super_admin',
  // etcd's users (infra/node/etcd-access.sh)
  'patroni',
  'root',
];

/**
 * PEM numbers its own agents agent<N>; the cluster's nodes hold 1 to 9 and
 * 101 to 110 (infra/workflows/inventory.ts). An outside agent takes a name.
 */
const NUMBERED_AGENT = /^agent\d+$/;

/**
 * The certificate an outside PEM agent (one on a monitored server) may hold:
 * client authentication only, no names beyond its CN, which is the database
 * user it logs in to the pem database as (PEM's `--pem-agent-user`).
 */
export function outsideAgentEntitlement(agentUser: unknown): Entitlement {
  const allowed =
    'a PostgreSQL role name of lower-case letters, digits and _ (at most 63, not starting with a digit), ' +
    "not agent<N> (PEM's numbered agents, the cluster's among them), not pg_*, and none of the cluster's own roles " +
    `(${CLUSTER_ROLE_NAMES.join(', ')})`;
  if (
    typeof agentUser !== 'string' ||
    !ROLE_NAME.test(agentUser) ||
    NUMBERED_AGENT.test(agentUser) ||
    agentUser.startsWith('pg_') ||
    CLUSTER_ROLE_NAMES.includes(agentUser)
  ) {
    throw new InvalidInputError(
      `agentUser must be ${allowed}; got ${JSON.stringify(agentUser) ?? String(agentUser)}`,
    );
  }
  return {
    identity: 'pem-agent',
    commonName: agentUser,
    dnsNames: [],
    ipAddresses: [],
    extendedKeyUsages: ['1.3.6.1.5.5.7.3.2'],
  };
}
