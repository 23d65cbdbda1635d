import { logger } from '../lib/logger';
import { healthGate } from '../lib/replication';
import { InvalidRequestError } from '../lib/ssm-run';
import type { UpgradeClients, UpgradeInventory, UpgradeNode } from './cluster';
import type { HaltResult } from './halt';
import { NodeCheck, planUpgrade } from './plan';
import { Preflight, preflight } from './preflight';
import { parseRequest, RequestDefaults } from './request';
import {
  awaitLeader,
  awaitMember,
  awaitReadTarget,
  confirmUpgraded,
  halt,
  haltReport,
  switchover,
} from './steps';
import { awaitWebTarget, setWebHostInService } from './web-targets';

type WithInventory<T> = T & { readonly inventory: UpgradeInventory };
export type UpgradeEvent =
  | WithInventory<{
      readonly action: 'preflight';
      readonly input: unknown;
    }>
  | WithInventory<{
      readonly action: 'plan';
      readonly preflight: Preflight;
      readonly checks: readonly NodeCheck[];
    }>
  | {
      readonly action: 'awaitReadTarget';
      readonly node: UpgradeNode;
      readonly want: 'drained' | 'healthy';
      readonly deadline?: number;
    }
  | WithInventory<{
      readonly action: 'awaitMember';
      readonly node: UpgradeNode;
      readonly maxLagBytes: number;
      readonly deadline?: number;
    }>
  | WithInventory<{
      readonly action: 'switchover';
      readonly leader: string;
      /** @default the function's MAX_LAG_BYTES */
      readonly maxLagBytes?: number;
    }>
  | WithInventory<{
      readonly action: 'gate';
      /** @default the function's MAX_LAG_BYTES */
      readonly maxLagBytes?: number;
    }>
  | WithInventory<{ readonly action: 'haltReport'; readonly halt: HaltResult }>
  | WithInventory<{
      readonly action: 'awaitLeader';
      readonly candidate: string;
      readonly oldLeader: string;
      readonly deadline?: number;
    }>
  | WithInventory<{ readonly action: 'halt' | 'confirm' }>
  | WithInventory<{ readonly action: 'deregisterWeb' | 'registerWeb'; readonly node: UpgradeNode }>
  | {
      readonly action: 'awaitWebTarget';
      readonly node: UpgradeNode;
      readonly want: 'out' | 'healthy';
      readonly deadline?: number;
    };

export interface UpgradeDependencies {
  /** Made only after the input is checked (they read secrets). */
  readonly clients: () => Promise<UpgradeClients>;
  readonly defaults: RequestDefaults;
}

/** The event's maxLagBytes, else the function's default; checked before anything is read. */
function maxLagBytesOf(event: { readonly maxLagBytes?: unknown }, defaults: RequestDefaults) {
  const value = event.maxLagBytes ?? defaults.maxLagBytes;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidRequestError(
      `maxLagBytes must be a whole number of bytes, 0 or more; given ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * One action of the rolling upgrade. Every wait is one look (the state
 * machine's Wait/Choice loop repeats it), and every failure is a named error
 * the runbook's Catch sends to its halt.
 */
export async function runUpgradeAction(event: UpgradeEvent, deps: UpgradeDependencies) {
  switch (event?.action) {
    case 'preflight': {
      // The input is checked before anything is read.
      const request = parseRequest(event.input, deps.defaults);
      const result = await preflight(await deps.clients(), event.inventory, request);
      logger.info('preflight passed', { leader: result.leader, replicas: result.replicaOrder });
      return result;
    }
    case 'plan': {
      const plan = planUpgrade(event.inventory, event.preflight, event.checks);
      logger.info('upgrade planned', { ...plan.settings, done: plan.alreadyAtTarget });
      return plan;
    }
    case 'awaitReadTarget':
      return awaitReadTarget(await deps.clients(), event.node, event.want, event.deadline);
    case 'awaitMember':
      return awaitMember(
        await deps.clients(),
        event.inventory,
        event.node,
        event.maxLagBytes,
        event.deadline,
      );
    case 'switchover': {
      const maxLagBytes = maxLagBytesOf(event, deps.defaults);
      const result = await switchover(
        await deps.clients(),
        event.inventory,
        event.leader,
        maxLagBytes,
      );
      logger.info('switchover requested', { ...result });
      return result;
    }
    case 'awaitLeader':
      return awaitLeader(
        await deps.clients(),
        event.inventory,
        event.candidate,
        event.oldLeader,
        event.deadline,
      );
    case 'gate': {
      // No snapshot to compare: the leader changes legitimately during an upgrade.
      const maxLagBytes = maxLagBytesOf(event, deps.defaults);
      const clients = await deps.clients();
      const snapshot = await healthGate(clients.patroniGet, event.inventory, {
        maxLagBytes,
        now: clients.now,
      });
      logger.info('cluster healthy between nodes', { ...snapshot });
      return snapshot;
    }
    case 'halt': {
      const result = await halt(await deps.clients(), event.inventory);
      logger.warn('upgrade halted', {
        summary: result.summary,
        drained: result.drained.map((n) => n.name),
        unknown: result.unknown,
      });
      return result;
    }
    case 'haltReport': {
      const result = await haltReport(await deps.clients(), event.inventory, event.halt);
      logger.warn('upgrade halt report', { ...result });
      return result;
    }
    case 'confirm':
      return confirmUpgraded(await deps.clients(), event.inventory);
    case 'deregisterWeb':
    case 'registerWeb': {
      const result = await setWebHostInService(
        await deps.clients(),
        event.inventory,
        event.node,
        event.action === 'registerWeb',
      );
      logger.info(
        `web host ${result.registered ? 'registered with' : 'deregistered from'} the ALB`,
        {
          ...result,
        },
      );
      return result;
    }
    case 'awaitWebTarget':
      return awaitWebTarget(await deps.clients(), event.node, event.want, event.deadline);
    default:
      throw new InvalidRequestError(
        `action must be preflight, plan, awaitReadTarget, awaitMember, gate, switchover, awaitLeader, halt, haltReport, confirm, deregisterWeb, registerWeb or awaitWebTarget; given ${JSON.stringify((event as { action?: unknown })?.action)}`,
      );
  }
}
