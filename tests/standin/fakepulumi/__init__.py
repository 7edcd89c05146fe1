"""A stand-in `pulumi` CLI for tests: enough of the real one for `pulumi.automation` to drive.

    cli       argv → commands: version, stack (select/init/ls/rm/output/history/export/import/
              change-secrets-provider/tag), config (set/get/rm, values from argv or stdin),
              state delete, cancel; stacks are per project (the working folder's Pulumi.yaml)
    store     the DIY backend on a folder (file://) or a stand-in bucket (gs://), and the
              secrets ciphers: passphrase, or a stand-in Cloud KMS key (gcpkms://)
    events    engine events to automation: a gRPC Events stream (`--event-log tcp://…`, what
              CLIs newer than 3.205 speak) or a JSON-lines file (older CLIs)
    update    up / preview / refresh / destroy of one stack: diffs registrations against state
    program   runs the caller's inline program over Pulumi's own gRPC protocol
    cloud     what a cloud does with each resource type: computed outputs, replacements, and
              member sets of non-authoritative IAM bindings

Test knobs (environment): STANDIN_VERSION (default: the installed SDK's version),
STANDIN_LOG (argv of every call, JSON lines), STANDIN_FAIL_TYPE (a resource type whose
create/update fails; only in stack STANDIN_FAIL_STACK when set), STANDIN_LATENCY (seconds each
resource operation takes), STANDIN_OPS_LOG (each operation's interval, JSON lines),
STANDIN_HOLD_LOCK (seconds an update holds the lock before it starts),
STANDIN_KILL_SELF (the update dies as if SIGKILLed), STANDIN_HANG_CONFIG_SET (the key whose
`config set` never answers), STANDIN_SERVICE_URL,
STANDIN_TRAFFIC_SPLIT, STANDIN_REVISION_NOT_READY, STANDIN_GCS (the folder of stand-in buckets:
a `gs://` backend works once a Bucket resource made its folder), STANDIN_KMS (the folder of
stand-in KMS keys: `gcpkms://` secrets work once a CryptoKey resource made its key),
STANDIN_FAIL_IMPORT (a stack whose `stack import` fails).
"""
