/**
 * Elastic Load Balancing v2's DescribeTargetHealth, RegisterTargets and
 * DeregisterTargets over the AWS query protocol, for the target groups the
 * caller knows (the rig's, whose health HAProxy checks), answered in
 * ELBv2's XML.
 */
import { AwsError } from './ssm';
import { element, indexes, listOf } from './query';

export const ELBV2_VERSION = '2015-12-01';

export type TargetHealthState =
  'initial' | 'healthy' | 'unhealthy' | 'unused' | 'draining' | 'unavailable';

export interface TargetHealthDescription {
  /** The instance id. */
  readonly id: string;
  readonly port: number;
  readonly healthCheckPort: string;
  readonly state: TargetHealthState;
  /** `Target.FailedHealthChecks`, `Elb.RegistrationInProgress`… (none when healthy). */
  readonly reason?: string;
  readonly description?: string;
}

/** A target group's registered targets and their health; undefined when there is no such group. */
export type TargetHealthLookup = (
  targetGroupArn: string,
) => Promise<readonly TargetHealthDescription[] | undefined>;

/**
 * Registers (`true`) or deregisters (`false`) instances in a target group;
 * false when there is no such group.
 */
export type TargetRegistration = (
  targetGroupArn: string,
  instanceIds: readonly string[],
  registered: boolean,
) => Promise<boolean>;

/** RegisterTargets (`registered` true) or DeregisterTargets of `Targets.member.N.Id`. */
export async function changeRegistration(
  params: URLSearchParams,
  registration: TargetRegistration,
  registered: boolean,
  requestId: string,
): Promise<string> {
  const arn = params.get('TargetGroupArn') ?? '';
  const ids = indexes(params, 'Targets.member').map(
    (index) => params.get(`Targets.member.${index}.Id`) ?? '',
  );
  if (ids.length === 0) throw new AwsError('ValidationError', 'Targets must name a target');
  if (!(await registration(arn, ids, registered)))
    throw new AwsError('TargetGroupNotFound', `One or more target groups not found: ${arn}`);
  const action = registered ? 'RegisterTargets' : 'DeregisterTargets';
  return (
    `<${action}Response xmlns="http://elasticloadbalancing.amazonaws.com/doc/${ELBV2_VERSION}/">` +
    element(`${action}Result`, '') +
    element('ResponseMetadata', [element('RequestId', requestId)]) +
    `</${action}Response>`
  );
}

/** `TargetHealthDescriptions` of the group, or of the targets `Targets.member.N` names. */
export async function describeTargetHealth(
  params: URLSearchParams,
  lookup: TargetHealthLookup,
  requestId: string,
): Promise<string> {
  const arn = params.get('TargetGroupArn') ?? '';
  const registered = await lookup(arn);
  if (!registered)
    throw new AwsError('TargetGroupNotFound', `One or more target groups not found: ${arn}`);
  const asked = indexes(params, 'Targets.member').map((index) => ({
    id: params.get(`Targets.member.${index}.Id`) ?? '',
    port: params.has(`Targets.member.${index}.Port`)
      ? Number(params.get(`Targets.member.${index}.Port`))
      : undefined,
  }));
  const described =
    asked.length === 0
      ? registered
      : asked.map(
          (target): TargetHealthDescription =>
            registered.find(
              (r) => r.id === target.id && (target.port === undefined || r.port === target.port),
            ) ?? {
              id: target.id,
              port: target.port ?? 0,
              healthCheckPort: String(target.port ?? 0),
              state: 'unused',
              reason: 'Target.NotRegistered',
              description: 'Target is not registered to the target group',
            },
        );
  const members = described.map((target) =>
    [
      element('Target', [element('Id', target.id), element('Port', target.port)]),
      element('HealthCheckPort', target.healthCheckPort),
      element('TargetHealth', [
        element('State', target.state),
        ...(target.reason ? [element('Reason', target.reason)] : []),
        ...(target.description ? [element('Description', target.description)] : []),
      ]),
    ].join(''),
  );
  return (
    `<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/${ELBV2_VERSION}/">` +
    element('DescribeTargetHealthResult', [
      element('TargetHealthDescriptions', listOf('member', members)),
    ]) +
    element('ResponseMetadata', [element('RequestId', requestId)]) +
    '</DescribeTargetHealthResponse>'
  );
}

/** The AWS query protocol's error document (HTTP 400). */
export function queryError(code: string, message: string, requestId: string): string {
  return (
    '<ErrorResponse><Error><Type>Sender</Type>' +
    `${element('Code', code)}${element('Message', message)}</Error>` +
    `${element('RequestId', requestId)}</ErrorResponse>`
  );
}
