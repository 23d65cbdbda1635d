import { Aspects, IAspect, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct, IConstruct } from 'constructs';
import { ValidationError } from './errors';

export interface AlarmTopicProps {
  readonly clusterName: string;
  /** Encrypts a new topic; CloudWatch is allowed to use it for that. */
  readonly encryptionKey: kms.IKey;
  /** Subscribe this address to a new topic. @default - no subscription */
  readonly email?: string;
  /**
   * Send alarms to this existing topic instead of a new one. Its policy (and
   * its key's) must already let CloudWatch publish.
   * @default - a new topic, encrypted with `encryptionKey`
   */
  readonly topicArn?: string;
}

const EMAIL = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$/;

/**
 * Where the cluster's alarms go: one SNS topic (new and encrypted, or the
 * user's). `notifyEveryAlarm` makes every alarm in a scope tell it on ALARM
 * and on OK, including alarms added later by any construct.
 */
export class AlarmTopic extends Construct {
  readonly topic: sns.ITopic;
  private readonly action: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    if (props.email !== undefined && !EMAIL.test(props.email)) {
      throw new ValidationError(this, `email must be one e-mail address; got "${props.email}"`);
    }
    if (props.email !== undefined && props.topicArn !== undefined) {
      throw new ValidationError(
        this,
        `email cannot be given with topicArn (subscribe on the existing topic); got email "${props.email}" and topicArn "${props.topicArn}"`,
      );
    }
    if (props.topicArn) {
      this.topic = sns.Topic.fromTopicArn(this, 'Topic', props.topicArn);
    } else {
      const topic = new sns.Topic(this, 'Topic', {
        displayName: `pem-ha ${props.clusterName} alarms`,
        masterKey: props.encryptionKey,
        enforceSSL: true,
      });
      const account = Stack.of(this).account;
      const cloudwatchPrincipal = new iam.ServicePrincipal('cloudwatch.amazonaws.com');
      topic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudWatchAlarmsOfThisAccount',
          principals: [cloudwatchPrincipal],
          actions: ['sns:Publish'],
          resources: [topic.topicArn],
          conditions: { StringEquals: { 'aws:SourceAccount': account } },
        }),
      );
      // An encrypted topic: CloudWatch encrypts each notification with the key.
      props.encryptionKey.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudWatchAlarmsPublishToTheEncryptedTopic',
          principals: [cloudwatchPrincipal],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': account } },
        }),
      );
      if (props.email) topic.addSubscription(new subscriptions.EmailSubscription(props.email));
      this.topic = topic;
    }
    this.action = new cwActions.SnsAction(this.topic);
  }

  /** Every alarm under `scope` notifies the topic when it fires and when it clears. */
  notifyEveryAlarm(scope: IConstruct): void {
    Aspects.of(scope).add(new NotifyOnAlarmAndOk(this.action));
  }
}

class NotifyOnAlarmAndOk implements IAspect {
  constructor(private readonly action: cloudwatch.IAlarmAction) {}

  visit(node: IConstruct): void {
    if (node instanceof cloudwatch.AlarmBase) {
      node.addAlarmAction(this.action);
      node.addOkAction(this.action);
    }
  }
}
