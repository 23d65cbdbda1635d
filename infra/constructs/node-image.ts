import { Annotations, CfnParameter, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import type { AmiFamily } from '../config/load-config';

/** The vendors' public SSM parameters: resolved by CloudFormation, no synth-time lookup. */
const IMAGE_PARAMETERS: Record<AmiFamily, (arch: 'amd64' | 'arm64') => string> = {
  'ubuntu-24.04': (arch) =>
    `/aws/service/canonical/ubuntu/server/24.04/stable/current/${arch}/hvm/ebs-gp3/ami-id`,
  'debian-12': (arch) => `/aws/service/debian/release/12/latest/${arch}`,
  'debian-13': (arch) => `/aws/service/debian/release/13/latest/${arch}`,
};

export const PINNED_AMI_PARAMETER = 'PinnedAmiId';

export function architectureOf(instanceType: ec2.InstanceType): 'amd64' | 'arm64' {
  return instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? 'arm64' : 'amd64';
}

/**
 * The image for an instance type: the pinned AMI when given (as one stack
 * parameter, so the template stays portable); else, for a stack with an
 * account, the family's latest looked up once and recorded in
 * cdk.context.json, so later deploys keep it; else (an environment-agnostic
 * template) the family's latest at every deploy, with a warning.
 */
export function nodeImage(
  scope: Construct,
  family: AmiFamily,
  instanceType: ec2.InstanceType,
  pinnedAmiId?: string,
): ec2.IMachineImage {
  if (pinnedAmiId) {
    const stack = Stack.of(scope);
    const parameter =
      (stack.node.tryFindChild(PINNED_AMI_PARAMETER) as CfnParameter | undefined) ??
      new CfnParameter(stack, PINNED_AMI_PARAMETER, {
        type: 'AWS::EC2::Image::Id',
        default: pinnedAmiId,
        description: 'AMI of every node (the amiId setting)',
      });
    return {
      getImage: () => ({
        imageId: parameter.valueAsString,
        osType: ec2.OperatingSystemType.LINUX,
        userData: ec2.UserData.forLinux(),
      }),
    };
  }
  const parameter = IMAGE_PARAMETERS[family](architectureOf(instanceType));
  const stack = Stack.of(scope);
  if (!Token.isUnresolved(stack.account) && !Token.isUnresolved(stack.region)) {
    return ec2.MachineImage.fromSsmParameter(parameter, {
      os: ec2.OperatingSystemType.LINUX,
      cachedInContext: true,
    });
  }
  Annotations.of(stack).addWarningV2(
    'pem-ha:unpinned-image',
    `No amiId, account or region: every deploy resolves the newest ${family} image, and a newer one replaces every node at once. For production set amiId, or account and region (the image is then looked up once and kept in cdk.context.json).`,
  );
  return ec2.MachineImage.fromSsmParameter(parameter, { os: ec2.OperatingSystemType.LINUX });
}
