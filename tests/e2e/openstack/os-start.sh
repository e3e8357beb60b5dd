#!/bin/bash
# os-start.sh STATE_DIR - a throw-away OpenStack for the e2e tests: Keystone
# (tests/e2e/keystone/ks-start.sh) + Placement + Glance + Neutron + Nova with the
# fake virt driver, all on free 127.0.0.1 ports, SQLite everywhere, no RabbitMQ,
# no hypervisor, no agents.  Writes STATE_DIR/openstack.env (export lines; the
# variables are listed in tests/e2e/openstack/CMakeLists.txt).  Installs nothing:
# exit 77 (skip) when a package is missing (tools/install-deps.sh test).
# Stop it with os-stop.sh STATE_DIR.
#
# Knobs: OS_READY_TIMEOUT (s, default 180, scaled by IMS_TEST_TIMEOUT_MULTIPLIER),
#   OS_DEBUG=1 (debug logs), OS_KEEP_DIR=1 (os-stop.sh keeps the stack dir).
#
# Why it looks like this (each point cost someone an afternoon):
#   * All of nova-api, -conductor, -scheduler, -compute run in ONE python process sharing
#     oslo.messaging's in-memory "fake://" transport (nova's functional tests do the same).
#     nova.rpc.create_transport is patched to return the global bus, else the cell1
#     mapping's transport_url would create a second, disconnected in-memory bus.
#   * Nova DELETE always calls Neutron (list_ports / deallocate) even for "networks":"none"
#     servers, so Neutron is required for Nova; Glance is required for imageRef.
#   * Neutron's alembic migrations fail on SQLite ("No support for ALTER of constraints in
#     SQLite dialect"); the schema is created from the models and the heads are stamped.
#   * neutron-server (eventlet) always forks an RPC and a periodic worker; the API-only
#     wsgi app under uwsgi is one process.  1 thread: the code is eventlet-patched.
#   * No agents: ports are bound by a 20-line ML2 mechanism driver ("ci_noop_bind").
#   * SQLite: WAL mode on every DB; placement must run with ONE thread (concurrent
#     allocation writes fail with "database is locked" in WAL mode).
#   * /usr/bin/python3 explicitly: a pyenv python3 earlier in PATH has no OpenStack modules.
#   * keystone-manage bootstrap only creates the *public* identity endpoint, but
#     keystonemiddleware defaults to interface=internal: internal/admin endpoints are added.
#   * Listening ports are chosen below 32768 (the ephemeral range starts there: a client
#     socket can hold a port that nothing listens on).
#   * XDG_CACHE_HOME in the stack dir: stevedore caches entry points per sys.path.
set -u
set -o pipefail

PY=/usr/bin/python3
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)

mult=${IMS_TEST_TIMEOUT_MULTIPLIER:-1}
state=${1:?usage: os-start.sh STATE_DIR}
os_die() { echo "os-start: $*" >&2; exit 1; }
os_skip() { # CI=true: a skip is a failure (docs/testing.md)
    echo "os-start: SKIP: $*" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 77
}
os_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# A free loopback port below the ephemeral range (see the header): random
# candidates in 20000-27999, each checked by binding it (28000-28999 belong to
# tests/e2e/ims, whose UE ports are taken even while nothing is bound).
free_port() {
    $PY - <<'PYEOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 27999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
else:
    raise SystemExit("no free port")
PYEOF
}

# ------------------------------------------------------------- helpers for start
# launch NAME CMD...: run CMD in its own session, stdout/stderr to log/NAME.out,
# remember the pid (the exec'ed process itself, so no setsid fork ambiguity)
launch() {
    local name=$1; shift
    setsid bash -c 'echo $$ > "$0"; exec "$@"' "$dir/run/$name.pid" "$@" \
        </dev/null >"$dir/log/$name.out" 2>&1 &
    local i
    for i in $(seq 1 100); do [ -s "$dir/run/$name.pid" ] && break; sleep 0.02; done
    echo "$name $(cat "$dir/run/$name.pid")" >> "$dir/pids"
}

# wait_http NAME URL [CODE] [HEADER]: poll until URL answers CODE (default 200)
wait_http() {
    local name=$1 url=$2 want=${3:-200} hdr=${4:-X-No-Header: 1} code pid
    pid=$(awk -v n="$name" '$1==n{print $2}' "$dir/pids")
    while :; do
        code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "$hdr" "$url" || true)
        [ "$code" = "$want" ] && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$dir/log/$name.out" "$dir/log/$name.log" >&2 2>/dev/null
            fail "$name exited"
        fi
        [ "$(date +%s)" -ge "$deadline" ] && fail "$name not ready at $url (last HTTP $code)"
        sleep 0.2
    done
}

fail() {
    echo "os-start: $*; logs kept in $dir/log" >&2
    OS_KEEP_DIR=1 "$HERE/os-stop.sh" "$state" >/dev/null 2>&1
    exit 1
}

sqlite_wal() {  # sqlite_wal DBFILE...
    $PY - "$@" <<'EOF'
import sqlite3, sys
for f in sys.argv[1:]:
    mode = sqlite3.connect(f).execute("PRAGMA journal_mode=WAL").fetchone()[0]
    assert mode == "wal", (f, mode)
EOF
}

uwsgi_common() {  # arguments shared by the uwsgi-served apps
    echo --plugins python3 --master --need-app --lazy-apps --die-on-term --no-orphans \
        --buffer-size 65535 --listen 100 --skip-atexit-teardown
}

# ---------------------------------------------------------------------------- start
os_start() {
    local t0 services=nova debug=false
    t0=$(date +%s%N)
    [ "${OS_DEBUG:-0}" = 1 ] && debug=true
    local host=127.0.0.1
    local timeout
    timeout=$(awk -v s="${OS_READY_TIMEOUT:-180}" -v m="$mult" 'BEGIN{printf "%d", s*m}')
    deadline=$(( $(date +%s) + timeout ))

    local b m
    for b in uwsgi curl setsid; do command -v $b >/dev/null || os_skip "missing $b"; done
    [ -x $PY ] || os_skip "missing $PY"
    [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || os_skip "missing uwsgi-plugin-python3"
    m="neutron nova placement glance keystoneclient"
    $PY -c "import $(echo $m | tr ' ' ,)" 2>/dev/null || \
        os_skip "cannot import $m with $PY (tools/install-deps.sh test)"
    local nova_port placement_port glance_port neutron_port
    nova_port=$(free_port) && placement_port=$(free_port) && glance_port=$(free_port) &&
        neutron_port=$(free_port) || os_die "no free port"
    [ "$(printf '%s\n' $nova_port $placement_port $glance_port $neutron_port | sort -u | wc -l)" = 4 ] ||
        os_die "port collision, run again"

    mkdir -p "$state" || os_die "cannot create $state"
    [ -f "$state/os.dir" ] && "$HERE/os-stop.sh" "$state" # a previous run did not clean up
    dir=$(mktemp -d /tmp/ims-os-XXXXXX) || os_die "mktemp failed"
    echo "$dir" > "$state/os.dir" # lets os-stop.sh clean up even if we fail below
    mkdir -p "$dir/log" "$dir/run" "$dir/etc" "$dir/state/lock" "$dir/state/instances" \
             "$dir/images" "$dir/staging" "$dir/tasks" "$dir/pylib/ci_noop_bind-1.0.dist-info"
    : > "$dir/pids"
    export XDG_CACHE_HOME=$dir/cache

    local svcpw; svcpw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

    # ---- Keystone (background, ~10 s): its port is known only when it is up,
    # so the config files name it as @KS_URL@ until then ----
    local ks_pid ks_env=$dir/keystone.env
    KS_TOKEN_EXPIRATION=3600 "$HERE/../keystone/ks-start.sh" "$state/keystone" \
        >"$dir/log/ks-start.out" 2>&1 &
    ks_pid=$!
    local ks_url=@KS_URL@

    # ---- config files (everything inline, all bound to 127.0.0.1) ----
    authsec() {  # keystoneauth options for service user $1
        cat <<EOF
auth_url = $ks_url
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $svcpw
region_name = RegionOne
EOF
    }
    authtoken() {  # [keystone_authtoken] for service user $1
        cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $ks_url
service_token_roles_required = true
$(authsec "$1")
EOF
    }

    # -- neutron
    cat > "$dir/etc/neutron.conf" <<EOF
[DEFAULT]
debug = $debug
log_file = $dir/log/neutron.log
bind_host = $host
bind_port = $neutron_port
core_plugin = ml2
service_plugins =
auth_strategy = keystone
api_paste_config = $dir/etc/neutron-api-paste.ini
state_path = $dir/state
transport_url = fake://
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
graceful_shutdown_timeout = 5
[database]
connection = sqlite:///$dir/neutron.db?check_same_thread=false
$(authtoken neutron)
[oslo_concurrency]
lock_path = $dir/state/lock
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = ci_noop_bind
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[ml2_type_vxlan]
vni_ranges = 1:10000
[securitygroup]
enable_security_group = true
[quotas]
quota_security_group = 1000
quota_security_group_rule = 10000
quota_network = 1000
quota_subnet = 1000
quota_port = 10000
EOF
    cat > "$dir/etc/neutron-api-paste.ini" <<EOF
[composite:neutron]
use = egg:Paste#urlmap
/: neutronversions_composite
/healthcheck: healthcheck
/v2.0: neutronapi_v2_0
[composite:neutronapi_v2_0]
use = call:neutron.auth:pipeline_factory
noauth = cors http_proxy_to_wsgi request_id fake_project_id catch_errors osprofiler extensions neutronapiapp_v2_0
keystone = cors http_proxy_to_wsgi request_id catch_errors osprofiler authtoken keystonecontext extensions neutronapiapp_v2_0
[composite:neutronversions_composite]
use = call:neutron.auth:pipeline_factory
noauth = cors http_proxy_to_wsgi neutronversions
keystone = cors http_proxy_to_wsgi neutronversions
[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory
[filter:catch_errors]
paste.filter_factory = oslo_middleware:CatchErrors.factory
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = neutron
[filter:fake_project_id]
paste.filter_factory = neutron.auth:NoauthFakeProjectId.factory
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory
[filter:keystonecontext]
paste.filter_factory = neutron.auth:NeutronKeystoneContext.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
[filter:extensions]
paste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory
[app:neutronversions]
paste.app_factory = neutron.pecan_wsgi.app:versions_factory
[app:neutronapiapp_v2_0]
paste.app_factory = neutron.api.v2.router:APIRouter.factory
[filter:osprofiler]
paste.filter_factory = osprofiler.web:WsgiMiddleware.factory
[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory
backends = disable_by_file
disable_by_file_path = $dir/state/healthcheck_disable
EOF
    # API-only neutron (= pbr "neutron-api" wsgi script): no RPC / periodic worker forks
    cat > "$dir/etc/neutron-api.wsgi" <<'EOF'
from neutron.cmd.eventlet.server import main_api_eventlet
application = main_api_eventlet()
EOF
    # ML2 mechanism driver that binds every port without an agent
    cat > "$dir/pylib/ci_noop_bind.py" <<'EOF'
"""Test-only ML2 mechanism driver: bind every port on its first segment with
vif_type 'other', status ACTIVE (no L2 agent exists; nova's fake driver plugs nothing)."""
from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class NoopBindMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OTHER,
                                {portbindings.CAP_PORT_FILTER: True},
                                status=constants.PORT_STATUS_ACTIVE)
            return
EOF
    printf 'Metadata-Version: 2.1\nName: ci-noop-bind\nVersion: 1.0\n' \
        > "$dir/pylib/ci_noop_bind-1.0.dist-info/METADATA"
    printf '[neutron.ml2.mechanism_drivers]\nci_noop_bind = ci_noop_bind:NoopBindMechanismDriver\n' \
        > "$dir/pylib/ci_noop_bind-1.0.dist-info/entry_points.txt"
    cat > "$dir/etc/neutron_sqlite_schema.py" <<'EOF'
# Neutron's alembic migrations need ALTER TABLE ... ADD CONSTRAINT (not in SQLite):
# build the schema from the models (like neutron's unit tests) and record the
# expand/contract heads (= "neutron-db-manage stamp heads", without its 2 s start-up).
import os, sqlite3, sys
import sqlalchemy
import neutron.db.migration as mig
from neutron.db.migration.models import head  # noqa: F401  imports every model
from neutron_lib.db import model_base
model_base.BASEV2.metadata.create_all(sqlalchemy.create_engine("sqlite:///" + sys.argv[1]))
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
vdir = os.path.join(os.path.dirname(mig.__file__), "alembic_migrations", "versions")
db.execute("CREATE TABLE IF NOT EXISTS alembic_version "
           "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
for f in ("EXPAND_HEAD", "CONTRACT_HEAD"):
    db.execute("INSERT INTO alembic_version VALUES (?)",
               (open(os.path.join(vdir, f)).read().strip(),))
db.commit()
EOF

    if [ "$services" = nova ]; then
    # -- placement
    cat > "$dir/etc/placement.conf" <<EOF
[DEFAULT]
debug = $debug
log_file = $dir/log/placement.log
[placement_database]
connection = sqlite:///$dir/placement.db?check_same_thread=false
[api]
auth_strategy = keystone
$(authtoken placement)
EOF
    # -- glance
    cat > "$dir/etc/glance-api.conf" <<EOF
[DEFAULT]
debug = $debug
log_file = $dir/log/glance.log
bind_host = $host
bind_port = $glance_port
workers = 0
enabled_backends = fs:file
graceful_shutdown_timeout = 5
[database]
connection = sqlite:///$dir/glance.db?check_same_thread=false
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $dir/images
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
$(authtoken glance)
[paste_deploy]
flavor = keystone
config_file = $dir/etc/glance-api-paste.ini
EOF
    cat > "$dir/etc/glance-api-paste.ini" <<EOF
[pipeline:glance-api-keystone]
pipeline = cors healthcheck http_proxy_to_wsgi versionnegotiation osprofiler authtoken context  rootapp
[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app
[app:apiversions]
paste.app_factory = glance.api.versions:create_resource
[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory
[filter:healthcheck]
paste.filter_factory = oslo_middleware:Healthcheck.factory
backends = disable_by_file
disable_by_file_path = $dir/state/healthcheck_disable
[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory
[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
[filter:osprofiler]
paste.filter_factory = osprofiler.web:WsgiMiddleware.factory
[filter:cors]
paste.filter_factory =  oslo_middleware.cors:filter_factory
oslo_config_project = glance
oslo_config_program = glance-api
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
EOF
    # -- nova
    cat > "$dir/etc/nova.conf" <<EOF
[DEFAULT]
debug = $debug
log_file = $dir/log/nova.log
state_path = $dir/state
instances_path = $dir/state/instances
host = fake-compute-1
my_ip = $host
compute_driver = ${NOVA_COMPUTE_DRIVER:-fake.FakeDriver}
transport_url = fake://
enabled_apis = osapi_compute
osapi_compute_listen = $host
osapi_compute_listen_port = $nova_port
osapi_compute_workers = 1
graceful_shutdown_timeout = 5
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $dir/etc/nova-api-paste.ini
[api_database]
connection = sqlite:///$dir/nova_api.db?check_same_thread=false
[database]
connection = sqlite:///$dir/nova_cell1.db?check_same_thread=false
$(authtoken nova)
[placement]
$(authsec placement)
[neutron]
$(authsec neutron)
[glance]
region_name = RegionOne
[cinder]
os_region_name = RegionOne
[oslo_concurrency]
lock_path = $dir/state/lock
[oslo_messaging_notifications]
driver = noop
[scheduler]
discover_hosts_in_cells_interval = -1
[quota]
instances = 1000
cores = 4000
ram = 4096000
[vnc]
enabled = false
[spice]
enabled = false
[serial_console]
enabled = false
EOF
    cat > "$dir/etc/nova-api-paste.ini" <<EOF
[composite:osapi_compute]
use = call:nova.api.openstack.urlmap:urlmap_factory
/: oscomputeversions
/v2: oscomputeversion_legacy_v2
/v2.1: oscomputeversion_v2
/v2/+: openstack_compute_api_v21_legacy_v2_compatible
/v2.1/+: openstack_compute_api_v21
[composite:openstack_compute_api_v21]
use = call:nova.api.auth:pipeline_factory_v21
keystone = healthcheck cors http_proxy_to_wsgi compute_req_id faultwrap request_log sizelimit osprofiler authtoken keystonecontext osapi_compute_app_v21
noauth2 = healthcheck cors http_proxy_to_wsgi compute_req_id faultwrap request_log sizelimit osprofiler noauth2 osapi_compute_app_v21
[composite:openstack_compute_api_v21_legacy_v2_compatible]
use = call:nova.api.auth:pipeline_factory_v21
keystone = healthcheck cors http_proxy_to_wsgi compute_req_id faultwrap request_log sizelimit osprofiler authtoken keystonecontext legacy_v2_compatible osapi_compute_app_v21
noauth2 = healthcheck cors http_proxy_to_wsgi compute_req_id faultwrap request_log sizelimit osprofiler noauth2 legacy_v2_compatible osapi_compute_app_v21
[filter:healthcheck]
use = egg:oslo.middleware#healthcheck
backends = disable_by_file
disable_by_file_path = $dir/state/healthcheck_disable
[filter:request_log]
paste.filter_factory = nova.api.openstack.requestlog:RequestLog.factory
[filter:compute_req_id]
paste.filter_factory = nova.api.compute_req_id:ComputeReqIdMiddleware.factory
[filter:faultwrap]
paste.filter_factory = nova.api.openstack:FaultWrapper.factory
[filter:noauth2]
paste.filter_factory = nova.api.openstack.auth:NoAuthMiddleware.factory
[filter:osprofiler]
paste.filter_factory = nova.profiler:WsgiMiddleware.factory
[filter:sizelimit]
paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory
[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory
[filter:legacy_v2_compatible]
paste.filter_factory = nova.api.openstack:LegacyV2CompatibleWrapper.factory
[app:osapi_compute_app_v21]
paste.app_factory = nova.api.openstack.compute:APIRouterV21.factory
[pipeline:oscomputeversions]
pipeline = cors faultwrap request_log http_proxy_to_wsgi oscomputeversionapp
[pipeline:oscomputeversion_v2]
pipeline = cors compute_req_id faultwrap request_log http_proxy_to_wsgi oscomputeversionapp_v2
[pipeline:oscomputeversion_legacy_v2]
pipeline = cors compute_req_id faultwrap request_log http_proxy_to_wsgi legacy_v2_compatible oscomputeversionapp_v2
[app:oscomputeversionapp]
paste.app_factory = nova.api.openstack.compute.versions:Versions.factory
[app:oscomputeversionapp_v2]
paste.app_factory = nova.api.openstack.compute.versions:VersionsV2.factory
[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = nova
[filter:keystonecontext]
paste.filter_factory = nova.api.auth:NovaKeystoneContext.factory
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
EOF
    # = nova-manage api_db sync; cell_v2 map_cell0; cell_v2 create_cell; db sync
    #   in one process (4 x nova-manage = 4 x 2.5 s of imports)
    cat > "$dir/etc/nova_db_setup.py" <<'EOF'
import nova.monkey_patch  # noqa: F401
import sys
from oslo_log import log as logging
import nova.conf
from nova.cmd import manage
from nova import config, objects

conf, cell0, cell1 = sys.argv[1:4]
config.parse_args(['nova-manage', '--config-file', conf])
logging.setup(nova.conf.CONF, 'nova')
objects.register_all()
for step, fn in (
        ('api_db sync', lambda: manage.ApiDbCommands().sync()),
        ('map_cell0', lambda: manage.CellV2Commands().map_cell0(database_connection=cell0)),
        ('create_cell', lambda: manage.CellV2Commands().create_cell(
            name='cell1', transport_url='fake://', database_connection=cell1, verbose=True)),
        ('db sync', lambda: manage.DbCommands().sync())):
    rc = fn()
    if rc not in (None, 0):
        sys.exit('nova-manage %s failed: %s' % (step, rc))
    print('nova-manage %s: ok' % step)
EOF
    # all nova services in one process on one in-memory bus
    cat > "$dir/etc/nova_all.py" <<'EOF'
import nova.monkey_patch  # noqa: F401  eventlet first, as nova/cmd/__init__.py does
import sys
from oslo_log import log as logging
from oslo_service import service as os_service
import eventlet
import nova.conf
from nova import config, context, objects, rpc, service
from nova.objects import host_mapping

CONF = nova.conf.CONF
LOG = logging.getLogger('nova_all')


def discover(compute, ready_file):
    """= nova-manage cell_v2 discover_hosts, once nova-compute is up (its
    pre_start_hook has created the compute node and its placement provider
    when start() sets .rpcserver); then touch ready_file."""
    while getattr(compute, 'rpcserver', None) is None:
        eventlet.sleep(0.1)
    ctxt = context.get_admin_context()
    while True:
        try:
            host_mapping.discover_hosts(ctxt)
            objects.HostMapping.get_by_host(ctxt, CONF.host)
            break
        except Exception as e:
            LOG.warning('discover_hosts: %s; retrying', e)
            eventlet.sleep(0.5)
    open(ready_file, 'w').close()
    LOG.info('compute host %s mapped, ready', CONF.host)


def main():
    ready_file = sys.argv.pop(1)
    config.parse_args(sys.argv)
    logging.setup(CONF, 'nova')
    objects.register_all()
    objects.Service.enable_min_version_cache()
    # nova.context.set_target_cell() makes a NEW transport from the cell mapping's
    # transport_url; a new fake:// transport is a separate in-memory bus, so the
    # conductor's casts to nova-compute would be lost. One bus for everything:
    rpc.create_transport = lambda url: rpc.TRANSPORT
    launcher = os_service.ServiceLauncher(CONF, restart_method='mutate')
    for binary, topic in (('nova-conductor', 'conductor'),
                          ('nova-scheduler', 'scheduler'),
                          ('nova-compute', 'compute')):
        svc = service.Service.create(binary=binary, topic=topic)
        launcher.launch_service(svc)
    launcher.launch_service(service.WSGIService('osapi_compute'))
    eventlet.spawn_n(discover, svc, ready_file)
    launcher.wait()


if __name__ == '__main__':
    sys.exit(main())
EOF
    fi   # services = nova

    # tiny console-script stand-ins (the Debian packages that ship them, nova-common &
    # co., drag in /etc files, system users and, for nova-compute, libvirt/qemu)
    mkscript() {
        printf '#!%s\nimport sys\nfrom %s import main\nsys.exit(main())\n' "$PY" "$2" > "$dir/run/$1"
        chmod +x "$dir/run/$1"
    }
    mkscript neutron-db-manage neutron.db.migration.cli   # not used at start, handy later
    if [ "$services" = nova ]; then
        mkscript nova-manage nova.cmd.manage
        mkscript glance-manage glance.cmd.manage
        mkscript glance-api glance.cmd.api
        mkscript placement-manage placement.cmd.manage
    fi

    # ---- DB schemas, in parallel with Keystone's start (no Keystone needed) ----
    local P=() N=()
    $PY "$dir/etc/neutron_sqlite_schema.py" "$dir/neutron.db" \
        >"$dir/log/db-neutron.log" 2>&1 & P+=($!); N+=(neutron)
    if [ "$services" = nova ]; then
        ( "$dir/run/placement-manage" --config-file "$dir/etc/placement.conf" db sync &&
          sqlite_wal "$dir/placement.db" ) >"$dir/log/db-placement.log" 2>&1 & P+=($!); N+=(placement)
        ( "$dir/run/glance-manage" --config-file "$dir/etc/glance-api.conf" db_sync &&
          sqlite_wal "$dir/glance.db" ) >"$dir/log/db-glance.log" 2>&1 & P+=($!); N+=(glance)
        ( $PY "$dir/etc/nova_db_setup.py" "$dir/etc/nova.conf" \
              "sqlite:///$dir/nova_cell0.db?check_same_thread=false" \
              "sqlite:///$dir/nova_cell1.db?check_same_thread=false" &&
          sqlite_wal "$dir/nova_api.db" "$dir/nova_cell0.db" "$dir/nova_cell1.db"
        ) >"$dir/log/db-nova.log" 2>&1 & P+=($!); N+=(nova)
    fi

    wait "$ks_pid" || { cat "$dir/log/ks-start.out" >&2; fail "Keystone did not start"; }
    # ks-start.sh's KEY=VALUE file -> the OS_* variables the setup below reads
    ( . "$state/keystone/keystone.env"
      printf "export OS_AUTH_URL='%s'\nexport OS_USERNAME=admin\nexport OS_PASSWORD='%s'\n" \
          "$KS_URL" "$KS_ADMIN_PASSWORD"
      printf "export OS_PROJECT_NAME=admin\nexport OS_USER_DOMAIN_NAME=Default\n"
      printf "export OS_PROJECT_DOMAIN_NAME=Default\nexport OS_IDENTITY_API_VERSION=3\n"
      printf "export OS_REGION_NAME=RegionOne\n" ) > "$ks_env" || fail "no keystone.env"
    ks_url=$(. "$ks_env"; echo "$OS_AUTH_URL")
    sed -i "s|@KS_URL@|$ks_url|g" "$dir"/etc/*.conf
    local t_ks; t_ks=$(os_ms "$t0")

    # ---- Keystone: service project/users/endpoints, demo project+user ----
    cat > "$dir/etc/os_setup.py" <<'EOF'
import json, os, sys, time
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

E = os.environ


def sess(user, pw, project):
    return ks_session.Session(auth=v3.Password(
        auth_url=E['OS_AUTH_URL'], username=user, password=pw, project_name=project,
        user_domain_id='default', project_domain_id='default'))


def one(lst):
    return lst[0] if lst else None


def register():
    ks = client.Client(session=sess(E['OS_USERNAME'], E['OS_PASSWORD'], E['OS_PROJECT_NAME']))
    region = E.get('OS_REGION_NAME', 'RegionOne')
    admin = one(ks.roles.list(name='admin'))
    member = one(ks.roles.list(name='member')) or ks.roles.create('member')
    service_role = one(ks.roles.list(name='service')) or ks.roles.create('service')
    proj = one(ks.projects.list(name='service', domain='default')) or \
        ks.projects.create('service', 'default', description='service project')
    # keystone-manage bootstrap only makes the public identity endpoint;
    # keystonemiddleware/keystoneauth default to interface=internal
    ident = one(ks.services.list(type='identity'))
    pub = one(ks.endpoints.list(service=ident, interface='public'))
    for iface in ('internal', 'admin'):
        if not ks.endpoints.list(service=ident, interface=iface):
            ks.endpoints.create(ident, pub.url, interface=iface, region=region)
    for spec in E['ENDPOINTS'].split():
        stype, name, url = spec.split('|')
        user = one(ks.users.list(name=name, domain='default'))
        if user:
            ks.users.update(user, password=E['SVC_PASSWORD'])
        else:
            user = ks.users.create(name, domain='default', password=E['SVC_PASSWORD'])
        ks.roles.grant(admin, user=user, project=proj)
        ks.roles.grant(service_role, user=user, project=proj)
        svc = one(ks.services.list(type=stype)) or ks.services.create(name, stype)
        for ep in ks.endpoints.list(service=svc):
            ks.endpoints.delete(ep)
        for iface in ('public', 'internal', 'admin'):
            ks.endpoints.create(svc, url, interface=iface, region=region)
    # the cloud AS tests: project A (a member, a reader), project B (a member);
    # each user delegates to the AS by an application credential of their own
    reader = one(ks.roles.list(name='reader')) or ks.roles.create('reader')
    out = {}
    for key, uname, pname, role in (('A', 'cloud-a-member', 'cloud-a', member),
                                    ('A_READER', 'cloud-a-reader', 'cloud-a', reader),
                                    ('B', 'cloud-b-member', 'cloud-b', member)):
        proj = one(ks.projects.list(name=pname, domain='default')) or \
            ks.projects.create(pname, 'default', description='cloud AS test project')
        pw = E['DEMO_PASSWORD'] + key.lower()
        user = ks.users.create(uname, domain='default', password=pw)
        ks.roles.grant(role, user=user, project=proj)
        uks = client.Client(session=sess(uname, pw, pname))
        ac = uks.application_credentials.create(name='ims-cloud-as', user=user.id)
        out.update({'OS_%s_USER' % key: uname, 'OS_%s_USER_ID' % key: user.id,
                    'OS_%s_PASSWORD' % key: pw, 'OS_%s_PROJECT' % key: pname,
                    'OS_%s_PROJECT_ID' % key: proj.id,
                    'OS_%s_APPCRED_ID' % key: ac.id, 'OS_%s_APPCRED_SECRET' % key: ac.secret})
    for k, v in out.items():
        print("export %s='%s'" % (k, v))


def api(s, method, url, ok=(200, 201, 202, 204), **kw):
    r = s.request(url, method, raise_exc=False, **kw)
    if r.status_code not in ok:
        sys.exit('%s %s -> %s %s' % (method, url, r.status_code, r.text[:500]))
    return r


def resources():
    s = sess(E['OS_USERNAME'], E['OS_PASSWORD'], E['OS_PROJECT_NAME'])
    out = {}
    if E['SERVICES'] == 'nova':
        nova, glance, placement = E['NOVA_URL'], E['GLANCE_URL'], E['PLACEMENT_URL']
        for fid, name, ram, vcpus, disk in (('1', 'm1.tiny', 512, 1, 1),
                                            ('2', 'm1.small', 2048, 1, 20)):
            api(s, 'POST', nova + '/flavors', json={'flavor': {
                'id': fid, 'name': name, 'ram': ram, 'vcpus': vcpus, 'disk': disk}})
        img = api(s, 'POST', glance + '/v2/images', json={
            'name': 'cirros-fake', 'disk_format': 'raw', 'container_format': 'bare',
            'visibility': 'public'}).json()
        # nova only accepts an image whose status is 'active' => it needs data
        api(s, 'PUT', glance + '/v2/images/%s/file' % img['id'], data=b'\0' * 1024,
            headers={'Content-Type': 'application/octet-stream'})
        out.update(OS_IMAGE_ID=img['id'], OS_FLAVOR_ID='1')
    net = api(s, 'POST', E['NEUTRON_URL'] + '/v2.0/networks', json={'network': {
        'name': 'ci-net', 'shared': True}}).json()['network']
    sub = api(s, 'POST', E['NEUTRON_URL'] + '/v2.0/subnets', json={'subnet': {
        'name': 'ci-subnet', 'network_id': net['id'], 'ip_version': 4,
        'cidr': '10.0.0.0/24'}}).json()['subnet']
    out.update(OS_NETWORK_ID=net['id'], OS_SUBNET_ID=sub['id'])
    for k, v in out.items():
        print("export %s='%s'" % (k, v))


globals()[sys.argv[1]]()
EOF
    local demopw users; demopw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    local endpoints="network|neutron|http://$host:$neutron_port"
    [ "$services" = nova ] && endpoints="$endpoints compute|nova|http://$host:$nova_port/v2.1 placement|placement|http://$host:$placement_port image|glance|http://$host:$glance_port"
    ( . "$ks_env"; SVC_PASSWORD=$svcpw DEMO_PASSWORD=$demopw ENDPOINTS=$endpoints \
        $PY "$dir/etc/os_setup.py" register ) >"$dir/users.env" 2>"$dir/log/setup-keystone.log" \
        || { cat "$dir/log/setup-keystone.log" >&2; fail "Keystone registration failed"; }

    # ---- wait for the schemas ----
    local i
    for i in "${!P[@]}"; do
        wait "${P[$i]}" || { tail -n 30 "$dir/log/db-${N[$i]}.log" >&2; fail "DB setup for ${N[$i]} failed"; }
    done
    local t_db; t_db=$(os_ms "$t0")

    # ---- services ----
    local token
    token=$( . "$ks_env"; curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$OS_USERNAME\",\"domain\":{\"id\":\"default\"},\"password\":\"$OS_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"$OS_PROJECT_NAME\",\"domain\":{\"id\":\"default\"}}}}}" \
        "$OS_AUTH_URL/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')
    [ -n "$token" ] || fail "cannot get an admin token"

    # uwsgi --http-socket closes every connection without saying so => 'Connection: close'
    # neutron: eventlet-monkey-patched code => 1 thread per process
    launch neutron uwsgi $(uwsgi_common) --http-socket "$host:$neutron_port" \
        --wsgi-file "$dir/etc/neutron-api.wsgi" --pythonpath "$dir/pylib" \
        --env "OS_NEUTRON_CONFIG_DIR=$dir/etc" --env OS_NEUTRON_CONFIG_FILES=neutron.conf \
        --processes "${NEUTRON_PROCESSES:-1}" --threads 1 \
        --add-header 'Connection: close' --chdir "$dir" --logto "$dir/log/neutron-uwsgi.log"
    if [ "$services" = nova ]; then
        # placement: ONE thread, see header (SQLite WAL + concurrent writers)
        launch placement uwsgi $(uwsgi_common) --http-socket "$host:$placement_port" \
            --wsgi-file /usr/bin/placement-api --env "OS_PLACEMENT_CONFIG_DIR=$dir/etc" \
            --processes 1 --threads 1 \
            --add-header 'Connection: close' --chdir "$dir" --logto "$dir/log/placement-uwsgi.log"
        launch glance "$dir/run/glance-api" --config-file "$dir/etc/glance-api.conf"
        # nova-compute registers its resource provider at start: placement first
        wait_http placement "http://$host:$placement_port/"
        launch nova $PY "$dir/etc/nova_all.py" "$dir/run/nova.ready" --config-file "$dir/etc/nova.conf"
        wait_http glance "http://$host:$glance_port/v2/images" 200 "X-Auth-Token: $token"
        wait_http nova "http://$host:$nova_port/v2.1/flavors" 200 "X-Auth-Token: $token"
    fi
    wait_http neutron "http://$host:$neutron_port/v2.0/networks" 200 "X-Auth-Token: $token"

    local res
    res=$( . "$ks_env"; export SERVICES=$services NOVA_URL="http://$host:$nova_port/v2.1" \
        GLANCE_URL="http://$host:$glance_port" PLACEMENT_URL="http://$host:$placement_port" \
        NEUTRON_URL="http://$host:$neutron_port"
        $PY "$dir/etc/os_setup.py" resources ) 2>"$dir/log/setup-resources.log" \
        || { cat "$dir/log/setup-resources.log" >&2; fail "resource setup failed"; }
    if [ "$services" = nova ]; then
        # nova_all.py maps the compute host (discover_hosts) once nova-compute is up;
        # its resource provider must be in placement too, else NoValidHost
        while [ ! -e "$dir/run/nova.ready" ] ||
              ! curl -s -m 5 -H "X-Auth-Token: $token" "http://$host:$placement_port/resource_providers" |
                grep -q '"uuid"'; do
            kill -0 "$(awk '$1=="nova"{print $2}' "$dir/pids")" 2>/dev/null || { tail -n 30 "$dir/log/nova.out" "$dir/log/nova.log" >&2; fail "nova exited"; }
            [ "$(date +%s)" -ge "$deadline" ] && fail "nova-compute not registered/mapped after ${timeout}s"
            sleep 0.2
        done
    fi

    # ---- env file ----
    {
        echo "# generated by os-start.sh; source me (the variables: CMakeLists.txt)"
        grep '^export OS_' "$ks_env"
        echo "export OS_STACK_DIR='$dir'"
        echo "export NEUTRON_URL='http://$host:$neutron_port'"
        echo "export NOVA_URL='http://$host:$nova_port/v2.1'"
        echo "export GLANCE_URL='http://$host:$glance_port'"
        echo "export PLACEMENT_URL='http://$host:$placement_port'"
        echo "export NOVA_PID='$(awk '$1=="nova"{print $2}' "$dir/pids")'"
        echo "export NOVA_LOG='$dir/log/nova.log'"
        echo "$res"
        cat "$dir/users.env"
    } > "$dir/openstack.env"
    chmod 600 "$dir/openstack.env"
    cp "$dir/openstack.env" "$state/openstack.env"
    printf 'os-start: ready in %d ms (keystone %d ms, schemas %d ms), dir %s\n' \
        "$(os_ms "$t0")" "$t_ks" "$t_db" "$dir" >&2
}

os_start
