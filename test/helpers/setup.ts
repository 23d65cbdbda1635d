// Loaded before every test file (jest setupFiles).
// tsyringe, under @peculiar/x509, needs the Reflect metadata API first.
import 'reflect-metadata';
import '../../rig/polyfills';
// CDK's built-in CloudFormation validation costs about 4 s per synthesis;
// test/infra/nag.test.ts runs it (nagReport), and CI's `cdk synth` does.
process.env.CDK_VALIDATION = 'false';
