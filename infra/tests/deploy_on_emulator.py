#!/usr/bin/env python3
"""Creates the infra/ templates on the local AWS emulator, checks what they made, deletes them.

Run by scripts/test-infra.sh with AWS_ENDPOINT_URL pointing at a running emulator (ministack,
the default of scripts/emulator.sh). The toolkit's stacks go to the emulator's default account;
customer-role.yaml goes to two other accounts (ministack takes the account from a 12-digit access
key id). Variants that use resource types the emulator lacks are submitted too: the emulator must
refuse them naming exactly those types (so the list in infra/README.md stays true), and they are
counted as skipped. Ends with one line `infra: N passed, N failed, N skipped`.
"""

import json
import os
import pathlib
import re
import secrets
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = pathlib.Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
# Never a real account: this creates and deletes stacks.
if not re.match(r"https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?/?$", ENDPOINT):
    raise SystemExit(f"AWS_ENDPOINT_URL={ENDPOINT} is not a local emulator (loopback only)")
REGION = os.environ.get("AWS_REGION", "us-east-1")
STACK_TIMEOUT_S = 120

# A short random project name and two random customer accounts per run: names, exports and the
# fixed role name NexusDeploymentRole never collide with another run on the same emulator.
PROJECT = "nxt" + secrets.token_hex(3)
CUSTOMER_ACCOUNT = "2" + "".join(secrets.choice("0123456789") for _ in range(11))
SECOND_CUSTOMER_ACCOUNT = "3" + "".join(secrets.choice("0123456789") for _ in range(11))
FAKE_CERT = "arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-4000-8000-000000000000"
IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/nexus-toolkit:test"
DOMAIN = "nexus.example.com"

passed = failed = skipped = 0
created = []  # (session, region, stack name, [(type, physical id)]), in creation order


def say(msg):
    print(msg, flush=True)


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        say(f"  ok   {what}")
    else:
        failed += 1
        say(f"  FAIL {what}{': ' + str(detail) if detail else ''}")
    return ok


def skip(what, why):
    global skipped
    skipped += 1
    say(f"  skip {what}: {why}")


def emulator_drops(what, live_ok, declared_ok, detail=""):
    """A property the emulator's CloudFormation does not apply: checked live when it does, and in
    the template (as parsed by cfn-lint) always."""
    check(f"{what} (declared in the template)", declared_ok, detail)
    if live_ok:
        check(f"{what} (live)", True)
    else:
        skip(f"{what} (live)", "the emulator's CloudFormation does not apply this property")


def declared(name):
    """A template as cfn-lint reads it (short-form tags expanded)."""
    from cfnlint.decode import decode_str

    parsed, errors = decode_str(template(name))
    if errors:
        raise SystemExit(f"{name}.yaml does not parse: {errors}")
    return parsed


def session(access_key=None):
    return boto3.session.Session(
        aws_access_key_id=access_key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )


TOOLKIT = session()
CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"})


def client(service, sess=TOOLKIT, region=REGION):
    return sess.client(service, endpoint_url=ENDPOINT, region_name=region, config=CONFIG)


def template(name):
    return (INFRA / f"{name}.yaml").read_text()


def without_resource(body, logical_id, next_logical_id):
    """The template less one resource (the text from its key to the next resource's key)."""
    start = body.index(f"\n  {logical_id}:\n")
    end = body.index(f"\n  {next_logical_id}:\n")
    return body[:start] + body[end:]


def params(**kv):
    return [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in kv.items()]


def stack_failure(cfn, name):
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return ""
    return "; ".join(
        f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("FAILED")
    )


def wait(cfn, name, goal):
    deadline = time.time() + STACK_TIMEOUT_S
    while True:
        try:
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError as e:
            if goal == "DELETE_COMPLETE" and "does not exist" in str(e):
                return {"StackStatus": "DELETE_COMPLETE"}
            raise
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return stack
        if time.time() > deadline:
            return stack
        time.sleep(0.5)


def create(label, name, body, parameters, sess=TOOLKIT, region=REGION):
    """Creates a stack and waits; returns its outputs, or None after recording the failure."""
    cfn = client("cloudformation", sess, region)
    started = time.time()
    try:
        cfn.create_stack(
            StackName=name, TemplateBody=body, Parameters=parameters, Capabilities=["CAPABILITY_NAMED_IAM"]
        )
    except ClientError as e:
        check(f"{label}: CreateStack accepted", False, e)
        return None
    stack = wait(cfn, name, "CREATE_COMPLETE")
    resources = []
    try:
        resources = [
            (r["ResourceType"], r.get("PhysicalResourceId", ""))
            for r in cfn.describe_stack_resources(StackName=name)["StackResources"]
        ]
    except ClientError:
        pass
    created.append((sess, region, name, resources))
    ok = check(
        f"{label}: {name} CREATE_COMPLETE ({time.time() - started:.1f} s, {len(resources)} resources)",
        stack["StackStatus"] == "CREATE_COMPLETE",
        f"{stack['StackStatus']} {stack.get('StackStatusReason', '')} {stack_failure(cfn, name)}",
    )
    if not ok:
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def expect_refused(label, name, body, parameters, expected, sess=TOOLKIT, region=REGION):
    """A variant the emulator cannot create: it must refuse it for exactly `expected`.

    `expected` is a set of resource types (refused as unrecognized before anything is made) or
    a string the refusal must contain (a template rule)."""
    cfn = client("cloudformation", sess, region)
    try:
        cfn.create_stack(
            StackName=name, TemplateBody=body, Parameters=parameters, Capabilities=["CAPABILITY_NAMED_IAM"]
        )
    except ClientError as e:
        message = str(e)
        if isinstance(expected, str):
            check(f"{label}: refused ({expected})", expected in message, message)
            return
        found = re.search(r"Unrecognized resource types: \[([^\]]*)\]", message)
        types = {t.strip() for t in found.group(1).split(",")} if found else set()
        if check(f"{label}: the emulator refuses exactly the types infra/README.md lists", types == expected, message):
            skip(label, "the emulator lacks " + ", ".join(sorted(types)) + " (validated by cfn-lint only)")
        return
    stack = wait(cfn, name, "CREATE_COMPLETE")
    created.append((sess, region, name, []))
    check(
        f"{label}: refused",
        False,
        f"the emulator created it ({stack['StackStatus']}): update the skip list here and infra/README.md",
    )


# ---------------------------------------------------------------------------------------------
# What each stack must have made.


def check_network(out):
    ec2 = client("ec2")
    vpc = out["VpcId"]
    check("network: the VPC exists", len(ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]) == 1)
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    ids = out["PublicSubnetIds"].split(",") + out["PrivateSubnetIds"].split(",")
    check("network: 2 public + 2 private subnets", sorted(s["SubnetId"] for s in subnets) == sorted(ids), subnets)
    zones = {s["AvailabilityZone"] for s in subnets}
    check("network: subnets in two Availability Zones", len(zones) == 2, zones)
    check("network: dev has no NAT gateway", out.get("NatGatewayCount") == "0", out.get("NatGatewayCount"))
    groups = {
        g["GroupId"]: g
        for g in ec2.describe_security_groups(GroupIds=[out["AppSecurityGroupId"], out["LoadBalancerSecurityGroupId"]])[
            "SecurityGroups"
        ]
    }
    app = groups[out["AppSecurityGroupId"]]["IpPermissions"]
    ok = (
        len(app) == 1
        and app[0].get("FromPort") == 3000
        and app[0].get("ToPort") == 3000
        and not app[0].get("IpRanges")
        and [p["GroupId"] for p in app[0].get("UserIdGroupPairs", [])] == [out["LoadBalancerSecurityGroupId"]]
    )
    check("network: the app's port 3000 admits the load balancer's group only", ok, app)


def check_data(out, env, readers):
    ddb = client("dynamodb")
    table = ddb.describe_table(TableName=out["TableName"])["Table"]
    check(
        "data: table keys pk (HASH) / sk (RANGE)",
        [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [("pk", "HASH"), ("sk", "RANGE")],
        table["KeySchema"],
    )
    indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
    check("data: exactly the indexes gsi1..gsi5", sorted(indexes) == [f"gsi{n}" for n in range(1, 6)], sorted(indexes))
    for n in range(1, 6):
        i = indexes.get(f"gsi{n}", {})
        keys = [(k["AttributeName"], k["KeyType"]) for k in i.get("KeySchema", [])]
        check(
            f"data: gsi{n} on gsi{n}pk (HASH) / gsi{n}sk (RANGE), projecting ALL",
            keys == [(f"gsi{n}pk", "HASH"), (f"gsi{n}sk", "RANGE")]
            and i.get("Projection", {}).get("ProjectionType") == "ALL",
            i,
        )
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    check("data: every key attribute is a string", set(types.values()) == {"S"} and len(types) == 12, types)
    check(
        "data: on-demand billing",
        table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST",
        table.get("BillingModeSummary"),
    )
    resources = declared("data")["Resources"]
    table_props = resources["Table"]["Properties"]
    sse = table.get("SSEDescription") or {}
    emulator_drops(
        "data: table SSE with the stack's KMS key",
        sse.get("SSEType") == "KMS" and sse.get("KMSMasterKeyArn") == out["DataKeyArn"],
        table_props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Fn::GetAtt": ["DataKey", "Arn"]}},
        sse,
    )
    check(
        f"data: deletion protection {'on' if env == 'prod' else 'off'} in {env}",
        table.get("DeletionProtectionEnabled", False) == (env == "prod"),
        table.get("DeletionProtectionEnabled"),
    )
    pitr = ddb.describe_continuous_backups(TableName=out["TableName"])["ContinuousBackupsDescription"]
    emulator_drops(
        "data: point-in-time recovery enabled",
        pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED",
        table_props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True},
        pitr,
    )
    key = client("kms").describe_key(KeyId=out["DataKeyArn"])["KeyMetadata"]
    check("data: a customer-managed KMS key", key.get("KeyManager") == "CUSTOMER", key.get("KeyManager"))
    s3 = client("s3")
    bucket = out["ArtifactsBucketName"]
    check("data: bucket versioning enabled", s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled")
    bucket_props = resources["ArtifactsBucket"]["Properties"]
    try:
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    except ClientError as e:
        rule = {"error": str(e)}
    default = bucket_props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    emulator_drops(
        "data: bucket encrypted with the KMS key",
        rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "aws:kms",
        default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]}},
        rule,
    )
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    statements = {st.get("Sid"): st for st in policy["Statement"]}
    check("data: the bucket refuses plain HTTP", statements.get("DenyInsecureTransport", {}).get("Effect") == "Deny", policy)
    if readers is None:
        check("data: no cross-account template readers unless asked", "TemplateReaders" not in statements, policy)
    else:
        got = statements.get("TemplateReaders", {}).get("Condition", {}).get("StringEquals", {}).get("aws:PrincipalAccount")
        check("data: the given customer accounts may read templates/", sorted(got or []) == sorted(readers), policy)
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    check("data: public access blocked", all(block.values()) and len(block) == 4, block)
    want = {"catalog-to-intelligent-tiering", "expire-template-copies", "noncurrent-versions", "abort-incomplete-uploads"}
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError:
        rules = []
    declared_rules = bucket_props["LifecycleConfiguration"]["Rules"]
    emulator_drops(
        "data: lifecycle rules, with Intelligent-Tiering",
        want <= {r["ID"] for r in rules},
        want == {r["Id"] for r in declared_rules}
        and any(t.get("StorageClass") == "INTELLIGENT_TIERING" for r in declared_rules for t in r.get("Transitions", [])),
        rules,
    )


def check_audit_anchor(out):
    s3 = client("s3")
    bucket = out["AuditAnchorBucketName"]
    props = declared("data")["Resources"]["AuditAnchorBucket"]["Properties"]
    try:
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as e:
        lock = {"error": str(e)}
    # The emulator honours Object Lock on buckets made through the API, not from a template;
    # app/tests/audit_chain.rs checks a governance-locked bucket made through the API.
    emulator_drops(
        "data: the audit anchor bucket locks objects in governance mode",
        lock.get("Rule", {}).get("DefaultRetention", {}).get("Mode") == "GOVERNANCE",
        props.get("ObjectLockEnabled") is True
        and props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"
        and props["VersioningConfiguration"] == {"Status": "Enabled"},
        lock,
    )
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    check("data: the audit anchor bucket is not public", all(block.values()) and len(block) == 4, block)


def check_identity(out):
    idp = client("cognito-idp")
    pool = idp.describe_user_pool(UserPoolId=out["UserPoolId"])["UserPool"]
    policy = pool["Policies"]["PasswordPolicy"]
    check(
        "identity: password policy (12+, upper, lower, digit, symbol)",
        policy.get("MinimumLength") == 12
        and all(policy.get(k) for k in ("RequireUppercase", "RequireLowercase", "RequireNumbers", "RequireSymbols")),
        policy,
    )
    check("identity: MFA optional by default", pool.get("MfaConfiguration") == "OPTIONAL", pool.get("MfaConfiguration"))
    groups = {g["GroupName"] for g in idp.list_groups(UserPoolId=out["UserPoolId"])["Groups"]}
    check("identity: groups executive, sales_manager, rep", groups == {"executive", "sales_manager", "rep"}, groups)
    app = idp.describe_user_pool_client(UserPoolId=out["UserPoolId"], ClientId=out["AppClientId"])["UserPoolClient"]
    check(
        "identity: a public authorization-code client for /auth/callback",
        app.get("AllowedOAuthFlows") == ["code"]
        and not app.get("ClientSecret")
        and app.get("CallbackURLs") == [f"https://{DOMAIN}/auth/callback"]
        and set(app.get("AllowedOAuthScopes", [])) == {"openid", "email", "profile"},
        app,
    )


def check_events(out, forwarders):
    sm = client("secretsmanager")
    for key in ("JwtSecretArn", "ParameterKeySecretArn"):
        value = sm.get_secret_value(SecretId=out[key])["SecretString"]
        check(f"events: {key} holds a 64-character generated key", len(value) == 64, len(value))
    bus = client("events").describe_event_bus(Name=out["EventBusName"])
    check("events: the operation bus exists", bus.get("Name") == out["EventBusName"], bus)
    policy = json.loads(bus["Policy"]) if bus.get("Policy") else {"Statement": []}
    allowed = [
        st.get("Condition", {}).get("StringEquals", {}).get("aws:PrincipalAccount") for st in policy["Statement"]
    ]
    declared_policy = declared("events")["Resources"]["EventBus"]["Properties"]["Policy"]
    emulator_drops(
        "events: the given customer accounts may forward stack events to the bus",
        [sorted(a or []) for a in allowed] == [sorted(forwarders)],
        "Fn::If" in declared_policy and declared_policy["Fn::If"][0] == "TakesCustomerEvents",
        policy,
    )
    rules = client("events").list_rules(EventBusName=out["EventBusName"])["Rules"]
    pattern = " ".join(r.get("EventPattern", "") for r in rules)
    check(
        "events: a rule for failed 'Deployment Operation State Change' events",
        "Deployment Operation State Change" in pattern and '"failed"' in pattern and "nexus.toolkit" in pattern,
        rules,
    )
    check(
        "events: forwarded 'CloudFormation Stack Status Change' events go to the stack-events queue",
        any(
            "CloudFormation Stack Status Change" in r.get("EventPattern", "")
            and any(t["Arn"] == out["StackEventsQueueArn"] for t in client("events").list_targets_by_rule(
                Rule=r["Name"], EventBusName=out["EventBusName"])["Targets"])
            for r in rules
        ),
        rules,
    )
    queue = client("sqs").get_queue_attributes(QueueUrl=out["StackEventsQueueUrl"], AttributeNames=["All"])["Attributes"]
    check("events: the stack-events queue exists", queue.get("QueueArn") == out["StackEventsQueueArn"], queue)
    redrive = json.loads(queue.get("RedrivePolicy", "{}"))
    dlq = redrive.get("deadLetterTargetArn", "")
    check(
        "events: stack events failing five receives go to a dead-letter queue kept 14 days",
        dlq.endswith("-stack-events-dlq") and int(redrive.get("maxReceiveCount", 0)) == 5
        and client("sqs").get_queue_attributes(
            QueueUrl=client("sqs").get_queue_url(QueueName=dlq.rsplit(":", 1)[-1])["QueueUrl"],
            AttributeNames=["MessageRetentionPeriod"])["Attributes"]["MessageRetentionPeriod"] == "1209600",
        queue,
    )
    sns = client("sns")
    resources = declared("events")["Resources"]
    for key, logical in (("OperationsTopicArn", "OperationsTopic"), ("AlarmTopicArn", "AlarmTopic")):
        attrs = sns.get_topic_attributes(TopicArn=out[key])["Attributes"]
        emulator_drops(
            f"events: {logical} KMS-encrypted with the messaging key",
            bool(attrs.get("KmsMasterKeyId")),
            resources[logical]["Properties"].get("KmsMasterKeyId") == {"Ref": "MessagingKey"},
            attrs.get("KmsMasterKeyId"),
        )
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{PROJECT}-dev-failed-operations")["MetricAlarms"]
    check(
        "events: the failed-operations alarm notifies the alarm topic",
        len(alarms) == 1 and out["AlarmTopicArn"] in alarms[0].get("AlarmActions", []),
        alarms,
    )


def readme_variables():
    text = (ROOT / "README.md").read_text()
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def check_app(out):
    ecs = client("ecs")
    cluster = ecs.describe_clusters(clusters=[out["ClusterName"]], include=["SETTINGS"])["clusters"][0]
    settings = {s["name"]: s["value"] for s in cluster.get("settings", [])}
    check("app: Container Insights enhanced", settings.get("containerInsights") == "enhanced", settings)
    check(
        "app: FARGATE and FARGATE_SPOT capacity providers",
        set(cluster.get("capacityProviders", [])) == {"FARGATE", "FARGATE_SPOT"},
        cluster.get("capacityProviders"),
    )
    service = ecs.describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]])["services"][0]
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    check("app: dev task 512 CPU / 1024 MB", (task.get("cpu"), task.get("memory")) == ("512", "1024"), task)
    container = task["containerDefinitions"][0]
    # The emulator hands some nested lists back with the template's capitalised keys.
    env = {e.get("name", e.get("Name")): e.get("value", e.get("Value")) for e in container.get("environment", [])}
    secret_names = {s.get("name", s.get("Name")) for s in container.get("secrets", [])} - {None}
    unknown = (set(env) | secret_names) - readme_variables()
    check("app: every container variable is one of README.md's", not unknown, unknown)
    check(
        "app: NEXUS_STORE=dynamodb, json logs, listening on 0.0.0.0:3000",
        env.get("NEXUS_STORE") == "dynamodb"
        and env.get("NEXUS_LOG_FORMAT") == "json"
        and env.get("LEPTOS_SITE_ADDR") == "0.0.0.0:3000",
        env,
    )
    declared_container = declared("app")["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    declared_secrets = declared_container["Secrets"]
    emulator_drops(
        "app: NEXUS_PARAMETER_KEY and NEXUS_AUDIT_KEY come from their secrets",
        secret_names == {"NEXUS_PARAMETER_KEY", "NEXUS_AUDIT_KEY"},
        {x["Name"]: x["ValueFrom"] for x in declared_secrets}
        == {
            "NEXUS_PARAMETER_KEY": {"Fn::ImportValue": {"Fn::Sub": "${Project}-${Environment}-ParameterKeySecretArn"}},
            "NEXUS_AUDIT_KEY": {"Fn::ImportValue": {"Fn::Sub": "${Project}-${Environment}-AuditKeySecretArn"}},
        },
        container.get("secrets"),
    )
    check(
        "app: audit checkpoints go to the Object Lock bucket",
        (env.get("NEXUS_AUDIT_ANCHOR_BUCKET") or "").startswith(f"{PROJECT}-dev-audit-anchor-"),
        env.get("NEXUS_AUDIT_ANCHOR_BUCKET"),
    )
    # The task role may write and read checkpoints, never delete them nor bypass governance.
    task_statements = [
        st
        for policy in declared("app")["Resources"]["TaskRole"]["Properties"]["Policies"]
        for st in policy["PolicyDocument"]["Statement"]
    ]
    task_actions = {a for st in task_statements for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    check(
        "app: the task role never holds s3:BypassGovernanceRetention nor deletes objects",
        not any(a in task_actions for a in ("s3:BypassGovernanceRetention", "s3:*", "*"))
        and not any(a.startswith("s3:Delete") or a.startswith("s3:PutObjectRetention") for a in task_actions),
        sorted(task_actions),
    )
    declared_names = {e["Name"] for e in declared_container["Environment"]} | {x["Name"] for x in declared_secrets}
    check("app: every declared container variable is one of README.md's", not (declared_names - readme_variables()), declared_names - readme_variables())
    elb = client("elbv2")
    groups = elb.describe_target_groups(TargetGroupArns=[service["loadBalancers"][0]["targetGroupArn"]])["TargetGroups"]
    g = groups[0]
    check(
        "app: target group health check /health every 30 s, 2 healthy / 10 unhealthy",
        (g.get("HealthCheckPath"), g.get("HealthCheckIntervalSeconds"), g.get("HealthyThresholdCount"), g.get("UnhealthyThresholdCount"))
        == ("/health", 30, 2, 10),
        g,
    )
    listeners = elb.describe_listeners(LoadBalancerArn=g["LoadBalancerArns"][0])["Listeners"] if g.get("LoadBalancerArns") else []
    rules = [r for listener in listeners for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]]
    check(
        "app: the load balancer answers /metrics 404 itself (scrapers read it inside the VPC)",
        any(
            any("/metrics" in c.get("PathPatternConfig", {}).get("Values", c.get("Values", [])) for c in r.get("Conditions", []))
            and any(a.get("Type") == "fixed-response" and a.get("FixedResponseConfig", {}).get("StatusCode") == "404" for a in r.get("Actions", []))
            for r in rules
        ),
        rules,
    )
    logs = client("logs").describe_log_groups(logGroupNamePrefix=out["LogGroupName"])["logGroups"]
    check("app: log group kept 7 days in dev", logs and logs[0].get("retentionInDays") == 7, logs)
    role = client("iam").get_role(RoleName=f"{PROJECT}-dev-task")["Role"]
    check("app: the task role has its fixed name", role["Arn"] == out["TaskRoleArn"], role["Arn"])


def check_edge(out):
    cf = client("cloudfront", region="us-east-1")
    config = cf.get_distribution_config(Id=out["DistributionId"])["DistributionConfig"]
    check(
        "edge: TLSv1.2_2021 minimum",
        config["ViewerCertificate"].get("MinimumProtocolVersion") == "TLSv1.2_2021",
        config["ViewerCertificate"],
    )
    behaviours = config.get("CacheBehaviors", {}).get("Items", [])
    check(
        "edge: /pkg/* from the assets bucket",
        [b["PathPattern"] for b in behaviours] == ["/pkg/*"] and behaviours[0]["TargetOriginId"] == "assets",
        behaviours,
    )
    check("edge: compression on", config["DefaultCacheBehavior"].get("Compress") is True, config["DefaultCacheBehavior"])
    waf = client("wafv2", region="us-east-1")
    arn = out["WebAclArn"]
    acl_id, acl_name = arn.split("/")[-1], arn.split("/")[-2]
    acl = waf.get_web_acl(Name=acl_name, Scope="CLOUDFRONT", Id=acl_id)["WebACL"]
    names = [r["Name"] for r in acl["Rules"]]
    rate = [r["Statement"].get("RateBasedStatement", {}).get("Limit") for r in acl["Rules"]]
    check(
        "edge: WAF with the two managed groups and 2000 requests / 5 min per IP",
        names == ["rate-limit-per-ip", "aws-common", "aws-known-bad-inputs"] and 2000 in rate,
        acl["Rules"],
    )


def check_customer_role(out, account, sess, role_name):
    check(f"customer-role: RoleArn is in account {account}", f":{account}:role/{role_name}" in out.get("RoleArn", ""), out)
    role = client("iam", sess).get_role(RoleName=role_name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        import urllib.parse

        trust = json.loads(urllib.parse.unquote(trust))
    statement = trust["Statement"][0]
    check(
        "customer-role: trusted by the toolkit's task role with an external id",
        statement["Principal"]["AWS"].endswith(f":role/{PROJECT}-dev-task")
        and "sts:ExternalId" in statement.get("Condition", {}).get("StringEquals", {}),
        statement,
    )
    boundary = f"arn:aws:iam::{account}:policy/NexusPermissionsBoundary"
    check(
        "customer-role: the permissions boundary policy exists, named as catalog templates name it",
        out.get("PermissionsBoundaryArn") == boundary
        and client("iam", sess).get_policy(PolicyArn=boundary)["Policy"]["PolicyName"] == "NexusPermissionsBoundary",
        out,
    )
    version = client("ssm", sess).get_parameter(Name="/nexus-toolkit/customer-role-version")["Parameter"]["Value"]
    check("customer-role: says its version (2) where the connect check reads it", version == "2", version)


# ---------------------------------------------------------------------------------------------
# Cleanup: stacks in reverse order, then what they kept (DeletionPolicy: Retain).


def delete_everything():
    for sess, region, name, resources in reversed(created):
        cfn = client("cloudformation", sess, region)
        try:
            cfn.delete_stack(StackName=name)
            stack = wait(cfn, name, "DELETE_COMPLETE")
            check(f"cleanup: {name} deleted", stack["StackStatus"] == "DELETE_COMPLETE", stack.get("StackStatusReason"))
        except ClientError as e:
            check(f"cleanup: {name} deleted", False, e)
        for rtype, pid in resources:
            try:
                remove_retained(sess, region, rtype, pid)
            except ClientError:
                pass  # gone with the stack, or never made


def remove_retained(sess, region, rtype, pid):
    if rtype == "AWS::DynamoDB::Table":
        ddb = client("dynamodb", sess, region)
        ddb.update_table(TableName=pid, DeletionProtectionEnabled=False)
        ddb.delete_table(TableName=pid)
    elif rtype == "AWS::S3::Bucket":
        s3 = client("s3", sess, region)
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=pid):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=pid, Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=pid)
    elif rtype == "AWS::KMS::Key":
        client("kms", sess, region).schedule_key_deletion(KeyId=pid, PendingWindowInDays=7)
    elif rtype == "AWS::SecretsManager::Secret":
        client("secretsmanager", sess, region).delete_secret(SecretId=pid, ForceDeleteWithoutRecovery=True)
    elif rtype == "AWS::Cognito::UserPool":
        idp = client("cognito-idp", sess, region)
        idp.update_user_pool(UserPoolId=pid, DeletionProtection="INACTIVE")
        idp.delete_user_pool(UserPoolId=pid)


# ---------------------------------------------------------------------------------------------


def main():
    started = time.time()
    say(f"==> infra/ templates on the emulator at {ENDPOINT} (project {PROJECT}, region {REGION})")
    p = PROJECT
    try:
        say("network")
        out = create("network dev", f"{p}-dev-network", template("network"), params(Project=p, Environment="dev"))
        if out:
            check_network(out)
        for env in ("staging", "prod"):
            expect_refused(
                f"network {env} (NAT gateways)",
                f"{p}-{env}-network",
                template("network"),
                params(Project=p, Environment=env),
                {"AWS::EC2::EIP", "AWS::EC2::NatGateway"},
            )

        say("data")
        # prod: with customer accounts allowed to read templates/ (the conditional statements).
        readers = f"{CUSTOMER_ACCOUNT},{SECOND_CUSTOMER_ACCOUNT}"
        for env, extra in (("dev", {}), ("prod", {"CustomerAccountIds": readers})):
            out = create(f"data {env}", f"{p}-{env}-data", template("data"), params(Project=p, Environment=env, **extra))
            if out:
                check_data(out, env, readers.split(",") if extra else None)
                check_audit_anchor(out)

        say("identity")
        identity = params(Project=p, Environment="dev", PublicDomainName=DOMAIN, HostedUiDomainPrefix=f"{p}-dev")
        out = create("identity dev", f"{p}-dev-identity", template("identity"), identity)
        if out:
            check_identity(out)
        expect_refused(
            "identity with ADFS (SAML provider)",
            f"{p}-dev-identity-adfs",
            template("identity"),
            params(
                Project=p,
                Environment="dev",
                PublicDomainName=DOMAIN,
                HostedUiDomainPrefix=f"{p}-adfs",
                AdfsMetadataUrl="https://adfs.example.com/FederationMetadata/2007-06/FederationMetadata.xml",
            ),
            {"AWS::Cognito::UserPoolIdentityProvider"},
        )

        say("secrets and events")
        # The emulator has no RotationSchedule: dev is created with rotation off (JwtRotationDays=0).
        out = create(
            "events dev (rotation off)",
            f"{p}-dev-events",
            template("events"),
            params(Project=p, Environment="dev", JwtRotationDays=0, CustomerAccountIds=readers),
        )
        if out:
            check_events(out, readers.split(","))
        expect_refused(
            "events with rotation",
            f"{p}-staging-events",
            template("events"),
            params(Project=p, Environment="staging"),
            {"AWS::SecretsManager::RotationSchedule"},
        )
        expect_refused(
            "events prod without rotation",
            f"{p}-prod-events",
            template("events"),
            params(Project=p, Environment="prod", JwtRotationDays=0),
            "ProdRotatesTheSigningKey",
        )

        say("app")
        app = params(Project=p, Environment="dev", ImageUri=IMAGE, PublicDomainName=DOMAIN)
        # The emulator creates no metric-math alarm (the 5xx rate): first see it refuse it, then
        # create everything else of app.yaml.
        cfn = client("cloudformation")
        cfn.create_stack(StackName=f"{p}-dev-app-full", TemplateBody=template("app"), Parameters=app, Capabilities=["CAPABILITY_NAMED_IAM"])
        stack = wait(cfn, f"{p}-dev-app-full", "CREATE_COMPLETE")
        reason = stack_failure(cfn, f"{p}-dev-app-full")
        if check(
            "app dev: the emulator refuses only the metric-math alarm",
            stack["StackStatus"] != "CREATE_COMPLETE" and "ErrorRateAlarm" in reason and "metric math" in reason,
            f"{stack['StackStatus']} {reason}",
        ):
            skip("app: ErrorRateAlarm", "the emulator has no metric-math alarms (validated by cfn-lint only)")
        cfn.delete_stack(StackName=f"{p}-dev-app-full")
        wait(cfn, f"{p}-dev-app-full", "DELETE_COMPLETE")
        out = create(
            "app dev (less ErrorRateAlarm)",
            f"{p}-dev-app",
            without_resource(template("app"), "ErrorRateAlarm", "LatencyAlarm"),
            app,
        )
        task_role = out["TaskRoleArn"] if out else f"arn:aws:iam::000000000000:role/{p}-dev-task"
        if out:
            check_app(out)
        for env in ("staging", "prod"):
            expect_refused(
                f"app {env} (auto scaling)",
                f"{p}-{env}-app",
                template("app"),
                params(Project=p, Environment=env, ImageUri=IMAGE, PublicDomainName=DOMAIN),
                {"AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy"},
            )

        say("edge (us-east-1)")
        out = create(
            "edge dev",
            f"{p}-dev-edge",
            template("edge"),
            params(
                Project=p,
                Environment="dev",
                PublicDomainName=DOMAIN,
                CertificateArn=FAKE_CERT,
                AlbDnsName=f"{p}-dev.us-east-1.elb.amazonaws.com",
            ),
            region="us-east-1",
        )
        if out:
            check_edge(out)

        say(f"customer-role (accounts {CUSTOMER_ACCOUNT} and {SECOND_CUSTOMER_ACCOUNT})")
        customer = session(CUSTOMER_ACCOUNT)
        out = create(
            "customer-role, every option",
            f"{p}-customer-role",
            template("customer-role"),
            params(
                Project=p,
                Environment="dev",
                ToolkitTaskRoleArn=task_role,
                ExternalId="fake-external-id-0123456789",
                ToolkitEventBusArn=f"arn:aws:events:{REGION}:000000000000:event-bus/{p}-dev",
                ToolkitArtifactsBucket=f"{p}-dev-artifacts-000000000000",
                ToolkitArtifactsKeyArn=f"arn:aws:kms:{REGION}:000000000000:key/00000000-0000-4000-8000-000000000000",
            ),
            sess=customer,
        )
        if out:
            check_customer_role(out, CUSTOMER_ACCOUNT, customer, "NexusDeploymentRole")
        second = session(SECOND_CUSTOMER_ACCOUNT)
        out = create(
            "customer-role, defaults",
            f"{p}-customer-role",
            template("customer-role"),
            params(
                Project=p,
                Environment="prod",
                ToolkitTaskRoleArn=task_role,
                ExternalId="fake-external-id-9876543210",
            ),
            sess=second,
        )
        if out:
            check_customer_role(out, SECOND_CUSTOMER_ACCOUNT, second, "NexusDeploymentRole")
    finally:
        say("cleanup")
        delete_everything()
    say(f"==> {time.time() - started:.1f} s")
    say(f"infra: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
