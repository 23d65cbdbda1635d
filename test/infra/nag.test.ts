import { nagReport } from '../helpers/synth';

describe('cdk-nag AwsSolutions', () => {
  it.each([
    ['the default topology', {}],
    ['PEM disabled', { pemEnabled: 'false' }],
    [
      'a pinned region with client networks',
      {
        account: '123456789012',
        region: 'eu-west-1',
        databaseClientCidrs: '10.0.0.0/8',
        webClientCidrs: '10.0.0.0/8',
        // The image lookup a first synth with credentials records in cdk.context.json.
        'ssm:account=123456789012:parameterName=/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id:region=eu-west-1':
          'ami-0aaaabbbbccccdddd',
      },
    ],
  ])(
    'leaves no finding unacknowledged for %s, and every acknowledgement gives a reason',
    (_name, settings) => {
      // Given the app with the AwsSolutions pack, When synthesized (throws on any open finding)
      const report = nagReport(settings);

      // Then the pack passed and every acknowledgement names its resource and a real reason
      const awsSolutions = report.pluginReports.find(
        (plugin) => plugin.pluginName === 'AwsSolutions',
      );
      expect(awsSolutions?.conclusion).toBe('success');
      expect(awsSolutions?.violations).toEqual([]);
      for (const finding of awsSolutions!.suppressedViolations as Array<{
        ruleName: string;
        reason?: string;
        violatingConstructs: Array<{ constructPath: string }>;
      }>) {
        expect(finding.reason?.length ?? 0).toBeGreaterThan(40);
        expect(finding.violatingConstructs.length).toBeGreaterThan(0);
      }
      // And CDK's own CloudFormation validation found nothing either
      const cloudFormation = report.pluginReports.find(
        (plugin) => plugin.pluginName === 'CloudFormation Validate',
      );
      expect(cloudFormation?.conclusion).toBe('success');
      expect(cloudFormation?.violations).toEqual([]);
    },
  );
});
