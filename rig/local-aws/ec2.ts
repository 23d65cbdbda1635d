/**
 * EC2's DescribeInstances over the EC2 query protocol, for the instances the
 * caller says exist (the rig's nodes): filters by tag, tag key, state, id
 * and private address, answered in EC2's XML.
 */
import { AwsError } from './ssm';
import { element, indexedValues, indexes, listOf, matchesWildcard } from './query';

export const EC2_VERSION = '2016-11-15';

export interface LocalInstance {
  readonly instanceId: string;
  readonly privateIpAddress: string;
  readonly instanceType?: string;
  readonly tags: Readonly<Record<string, string>>;
  /** `running` while the node is up; `stopped` otherwise. */
  readonly state: 'running' | 'stopped';
}

const STATE_CODES = { running: 16, stopped: 80 } as const;

const FILTERS: Record<string, (instance: LocalInstance) => readonly string[]> = {
  'instance-id': (i) => [i.instanceId],
  'instance-state-name': (i) => [i.state],
  'instance-state-code': (i) => [String(STATE_CODES[i.state])],
  'private-ip-address': (i) => [i.privateIpAddress],
  'instance-type': (i) => (i.instanceType ? [i.instanceType] : []),
  'tag-key': (i) => Object.keys(i.tags),
};

/** `reservationSet` for the instances the request's InstanceId.N and Filter.N select. */
export function describeInstances(
  params: URLSearchParams,
  instances: readonly LocalInstance[],
  requestId: string,
): string {
  const ids = indexedValues(params, 'InstanceId');
  const missing = ids.filter((id) => !instances.some((i) => i.instanceId === id));
  if (missing.length > 0) {
    const quoted = missing.map((id) => `'${id}'`).join(', ');
    throw new AwsError(
      'InvalidInstanceID.NotFound',
      `The instance ID${missing.length > 1 ? 's' : ''} ${quoted} do${missing.length > 1 ? '' : 'es'} not exist`,
    );
  }
  const filters = indexes(params, 'Filter').map((index) => {
    const name = params.get(`Filter.${index}.Name`) ?? '';
    const values = indexedValues(params, `Filter.${index}.Value`);
    const tag = name.startsWith('tag:') ? name.slice(4) : undefined;
    const read =
      tag !== undefined
        ? (i: LocalInstance) => (tag in i.tags ? [i.tags[tag]] : [])
        : FILTERS[name];
    if (!read) throw new AwsError('InvalidParameterValue', `The filter '${name}' is invalid`);
    return (i: LocalInstance) =>
      read(i).some((actual) => values.some((pattern) => matchesWildcard(pattern, actual)));
  });
  const selected = instances.filter(
    (i) => (ids.length === 0 || ids.includes(i.instanceId)) && filters.every((f) => f(i)),
  );
  const reservations = selected.map((instance) =>
    [
      // One reservation per instance, as CloudFormation launches them one by one.
      element('reservationId', instance.instanceId.replace(/^i-/, 'r-')),
      element('instancesSet', listOf('item', [instanceXml(instance)])),
    ].join(''),
  );
  return (
    `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/${EC2_VERSION}/">` +
    element('requestId', requestId) +
    element('reservationSet', listOf('item', reservations)) +
    '</DescribeInstancesResponse>'
  );
}

function instanceXml(instance: LocalInstance): string {
  const tags = Object.entries(instance.tags).map(([key, value]) =>
    [element('key', key), element('value', value)].join(''),
  );
  return [
    element('instanceId', instance.instanceId),
    ...(instance.instanceType ? [element('instanceType', instance.instanceType)] : []),
    element('privateIpAddress', instance.privateIpAddress),
    element('instanceState', [
      element('code', STATE_CODES[instance.state]),
      element('name', instance.state),
    ]),
    element('tagSet', listOf('item', tags)),
  ].join('');
}

/** EC2's error document (HTTP 400). */
export function ec2Error(code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<Response><Errors><Error>${element('Code', code)}${element('Message', message)}</Error></Errors>` +
    `${element('RequestID', requestId)}</Response>`
  );
}
