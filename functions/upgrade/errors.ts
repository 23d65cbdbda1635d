import { ErrorName, messageError, InvalidInputError } from '../lib/errors';

export { InvalidInputError };
/** A preflight check failed; no node was touched. */
export class PreflightFailedError extends messageError(ErrorName.PreflightFailed) {}
/** A node did not come back healthy and caught up within its bound. */
export class VerificationTimedOutError extends messageError(ErrorName.VerificationTimedOut) {}
/** The NLB did not see a target change state within its bound. */
export class TargetHealthTimedOutError extends messageError(ErrorName.TargetHealthTimedOut) {}
/** Patroni refused the switchover, or another member than the candidate won. */
export class SwitchoverFailedError extends messageError(ErrorName.SwitchoverFailed) {}
/** The new leader was not serving through the write endpoint within its bound. */
export class SwitchoverTimedOutError extends messageError(ErrorName.SwitchoverTimedOut) {}
/** After a halt there is not exactly one healthy primary: page a human. */
export class NoHealthyPrimaryError extends messageError(ErrorName.NoHealthyPrimary) {}
