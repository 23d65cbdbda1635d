import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { failureEnd } from './certificate-states';
import { lambdaTask } from './task-states';

export interface AgentCertificateDefinitionProps {
  /** The signer: the only function that reads the issuing CA's key. */
  readonly signCertificates: lambda.IFunction;
}

/**
 * The agent certificate runbook: the signer checks and signs the CSR of a PEM
 * agent on a monitored server (CSR in, chain out, as the nodes' are; the key
 * stays with the agent). Input `{ "agentUser": "<its database user>", "csr":
 * "<PEM>" }`, checked before this definition starts
 * (functions/lib/runbook-inputs.ts). Output: the user, the certificate chain,
 * the cluster's root, the serial and when it expires. Touches no node.
 */
export function agentCertificateDefinition(
  scope: Construct,
  props: AgentCertificateDefinitionProps,
): sfn.IChainable {
  const { catchInto } = failureEnd(scope, 'Agent certificate refused');
  const sign = lambdaTask(scope, 'Sign the agent certificate', {
    lambdaFunction: props.signCertificates,
    payload: {
      outsideAgent: {
        agentUser: sfn.JsonPath.stringAt('$.agentUser'),
        csr: sfn.JsonPath.stringAt('$.csr'),
      },
    },
    resultSelector: {
      'agentUser.$': '$.Payload.agentUser',
      'certificate.$': '$.Payload.certificate',
      'rootCertificate.$': '$.Payload.rootCertificate',
      'serial.$': '$.Payload.serial',
      'notAfter.$': '$.Payload.notAfter',
    },
    resultPath: '$.issued',
  });
  catchInto(sign);
  return sign.next(new sfn.Succeed(scope, 'Agent certificate issued', { outputPath: '$.issued' }));
}
