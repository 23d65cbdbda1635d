/**
 * The names of every error pem-ha's functions raise on purpose. Step Functions
 * matches them in Retry and Catch, CloudFormation shows them for custom
 * resources, and an execution's failure carries them; the workflows import
 * this list for `addRetry`/`addCatch`, so a name is written once.
 */
export const ErrorName = {
  // Requests and inputs: nothing was read or changed.
  InvalidInput: 'InvalidInputError',
  InvalidRequest: 'InvalidRequestError',
  InvalidProperties: 'InvalidPropertiesError',
  RunbookAlreadyRunning: 'RunbookAlreadyRunningError',
  // Cluster state a runbook starts from or goes on with.
  ClusterUnhealthy: 'ClusterUnhealthyError',
  LeaderChanged: 'LeaderChangedError',
  PatroniUnreachable: 'PatroniUnreachableError',
  PreflightFailed: 'PreflightFailedError',
  NoHealthyPrimary: 'NoHealthyPrimaryError',
  // Commands sent to nodes through SSM Run Command.
  CommandFailed: 'CommandFailedError',
  CommandTimedOut: 'CommandTimedOutError',
  CommandCancelled: 'CommandCancelledError',
  InstanceNotRunning: 'InstanceNotRunningError',
  NodeNotManaged: 'NodeNotManagedError',
  BootstrapFailed: 'BootstrapFailedError',
  // Node replacement.
  ReplacementRefused: 'ReplacementRefusedError',
  RootReplacementFailed: 'RootReplacementFailedError',
  // The backup health runbook.
  ArchiveStatusUnreadable: 'ArchiveStatusUnreadableError',
  // The failover runbook.
  FailoverRefused: 'FailoverRefusedError',
  FailoverFailed: 'FailoverFailedError',
  FailoverPending: 'FailoverPendingError',
  // The rolling upgrade's waits and switchover.
  VerificationTimedOut: 'VerificationTimedOutError',
  TargetHealthTimedOut: 'TargetHealthTimedOutError',
  SwitchoverFailed: 'SwitchoverFailedError',
  SwitchoverTimedOut: 'SwitchoverTimedOutError',
  // The cluster CA and certificates.
  ClusterCaMissing: 'ClusterCaMissingError',
  ClusterTrustExists: 'ClusterTrustExistsError',
  NodeTrustExists: 'NodeTrustExistsError',
  CsrRejected: 'CsrRejectedError',
  RootRolloverInProgress: 'RootRolloverInProgressError',
  RootRolloverState: 'RootRolloverStateError',
  CertificateInUse: 'CertificateInUseError',
} as const;

export type ErrorName = (typeof ErrorName)[keyof typeof ErrorName];

/**
 * Base of every named error. `name` is set from {@link ErrorName} as a string
 * literal, so it survives the bundler's minifier (class names do not).
 */
export abstract class PemHaError extends Error {
  declare readonly name: ErrorName;

  protected constructor(name: ErrorName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = name;
  }
}

/** A named error whose whole content is its message. */
export function messageError(name: ErrorName) {
  return class extends PemHaError {
    constructor(message: string, options?: { cause?: unknown }) {
      super(name, message, options);
    }
  };
}

/** A runbook's execution input is wrong; nothing was read or touched. */
export class InvalidInputError extends messageError(ErrorName.InvalidInput) {}
