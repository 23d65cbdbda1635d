/**
 * The upgrade runbook's named errors: Step Functions matches them by name in
 * Retry and Catch, and the execution's failure carries the name and message.
 */
function named(name: string) {
  return class extends Error {
    constructor(message: string) {
      super(message);
      this.name = name;
    }
  };
}

/** The execution input is wrong; nothing was read or touched. */
export class InvalidInput extends named('InvalidInput') {}
/** Another execution of the upgrade runbook is running. */
export class RunbookAlreadyRunning extends named('RunbookAlreadyRunning') {}
/** A preflight check failed; no node was touched. */
export class PreflightFailedError extends named('PreflightFailedError') {}
/** A node did not come back healthy and caught up within its bound. */
export class VerificationTimedOutError extends named('VerificationTimedOutError') {}
/** The NLB did not see a target change state within its bound. */
export class TargetHealthTimedOutError extends named('TargetHealthTimedOutError') {}
/** Patroni refused the switchover, or another member than the candidate won. */
export class SwitchoverFailedError extends named('SwitchoverFailedError') {}
/** The new leader was not serving through the write endpoint within its bound. */
export class SwitchoverTimedOutError extends named('SwitchoverTimedOutError') {}
/** After a halt there is not exactly one healthy primary: page a human. */
export class NoHealthyPrimaryError extends named('NoHealthyPrimaryError') {}
