/**
 * A simulated Patroni REST API over a world's state: GET /cluster (whose
 * `lag` counts received WAL only, as Patroni's does) and each member's own
 * GET /patroni with received and replayed positions apart.
 */
import type { PatroniGet } from '../../functions/lib/patroni';

/** A replica's replay standing behind what it received (recovery frozen, WAL receiver running). */
export interface ReplayLag {
  readonly bytes: number;
  readonly paused?: boolean;
}

export interface SimulatedMember {
  readonly name: string;
  readonly address: string;
  /** The upgrade's drain tags (noloadbalance, nosync) are set. */
  readonly drained: boolean;
}

export interface SimulatedCluster {
  readonly members: () => readonly SimulatedMember[];
  readonly leader: () => string;
  readonly timeline: () => number;
  /** Bytes a replica has not received yet. */
  readonly receiveLag: (name: string) => number;
  readonly replayLag: (name: string) => ReplayLag | undefined;
  readonly now: () => number;
}

/** The leader's WAL position in bytes (GET /patroni `xlog.location`). */
export const LEADER_LOCATION = 5_000_000_000;

export function simulatedPatroni(world: SimulatedCluster): PatroniGet {
  const clusterView = () => ({
    members: world.members().map((m) => ({
      name: m.name,
      role: m.name === world.leader() ? 'leader' : 'replica',
      state: 'running',
      timeline: world.timeline(),
      lag: world.receiveLag(m.name),
      ...(m.drained ? { tags: { noloadbalance: true, nosync: true } } : {}),
    })),
  });
  const memberStatus = (name: string) => {
    const timeline = world.timeline();
    if (name === world.leader()) {
      return { state: 'running', role: 'primary', timeline, xlog: { location: LEADER_LOCATION } };
    }
    const received = LEADER_LOCATION - world.receiveLag(name);
    const lag = world.replayLag(name);
    return {
      state: 'running',
      role: 'replica',
      timeline,
      xlog: {
        received_location: received,
        replayed_location: received - (lag?.bytes ?? 0),
        replayed_timestamp: new Date(world.now() - 60_000).toISOString(),
        paused: lag?.paused ?? false,
      },
    };
  };
  return async (address, path) => {
    if (path === '/cluster') return clusterView();
    const member = world.members().find((m) => m.address === address);
    if (path !== '/patroni' || !member) throw new Error(`${address}:8008${path} answered 404`);
    return memberStatus(member.name);
  };
}
