# shellcheck shell=bash
# Set-up shared by scripts/serve and scripts/test. Source it; do not run it.
#
#   bootstrap_venv                      .venv with `pip install -e '.[test]'`, redone only
#                                       when pyproject.toml (or the Python) changed; then
#                                       compiles the translations (couponsvc/translations)
#   ensure_postgres [HOST PORT USER DB] PostgreSQL answering: running, else started,
#                                       else installed from apt (root only)
#   ensure_redis [HOST PORT]            Redis answering: running, else started, else installed
#   ensure_browser                      chromium and a CJK font (fonts-noto-cjk) for the browser
#                                       tests: installed from apt when missing (root only)
#   ensure_pgbouncer                    Debian's pgbouncer, for the tests that run the service
#                                       through it: installed from apt when missing (root only)
#   ensure_multihost                    what the multi-host test runs (pgbouncer, haproxy,
#                                       redis-sentinel, iproute2, nsenter): installed likewise
#
# Status lines go to standard error. Set COUPONSVC_NO_INSTALL=1 to forbid apt-get.

if [[ -n "${_COUPONSVC_BOOTSTRAP_LOADED:-}" ]]; then
    return 0
fi
_COUPONSVC_BOOTSTRAP_LOADED=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${REPO_ROOT}/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

_is_local_host() {
    case "$1" in
        127.0.0.1 | localhost | ::1 | "") return 0 ;;
        *) return 1 ;;
    esac
}

# May this run install system packages? Root with apt-get, and not forbidden.
_may_apt_install() {
    [[ "${COUPONSVC_NO_INSTALL:-0}" != 1 ]] && [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1
}

_APT_UPDATED=
_apt_install() {
    _may_apt_install || die "cannot install $* (need root with apt-get, and COUPONSVC_NO_INSTALL unset); install it by hand"
    if [[ -z "$_APT_UPDATED" ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
        _APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}

# Poll a command (given as arguments) for up to $1 seconds.
_wait_for() {
    local seconds="$1"
    shift
    local i
    for ((i = 0; i < seconds * 4; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.25
    done
    return 1
}

# --- Python ---------------------------------------------------------------

_install_stamp() {
    # What the installed environment depends on: the project file and the interpreter.
    {
        cat "${REPO_ROOT}/pyproject.toml"
        "${VENV}/bin/python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

bootstrap_venv() {
    command -v python3 >/dev/null 2>&1 || die "python3 not found (Python 3.11 or newer is needed)"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "python3 is $(python3 -V 2>&1); couponsvc needs Python 3.11 or newer"

    if ! "${VENV}/bin/python" -c 'import sys' >/dev/null 2>&1; then
        say "creating virtual environment ${VENV}"
        python3 -m venv "${VENV}" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi

    # One install at a time, even when serve and test start together.
    local lock_fd
    if command -v flock >/dev/null 2>&1; then
        exec {lock_fd}>"${VENV}/.bootstrap.lock"
        flock "$lock_fd"
    fi

    local stamp_file="${VENV}/.couponsvc-install-stamp"
    local wanted have=""
    wanted="$(_install_stamp)"
    [[ -f "$stamp_file" ]] && have="$(cat "$stamp_file")"
    if [[ "$wanted" != "$have" ]]; then
        say "installing couponsvc and its test tools into .venv (pyproject.toml changed or first run; may take a few minutes)"
        "${VENV}/bin/python" -m pip install --quiet --upgrade pip >&2 \
            || die "could not upgrade pip in ${VENV}"
        "${VENV}/bin/python" -m pip install --quiet -e "${REPO_ROOT}[test]" >&2 \
            || die "pip install -e '.[test]' failed"
        printf '%s\n' "$wanted" >"$stamp_file"
        say "virtual environment ready"
    else
        say "virtual environment up to date"
    fi

    # The translations the service reads (.mo) are built from the committed .po files on
    # every run, so an edited catalogue is never served stale.
    "${VENV}/bin/pybabel" --quiet compile -d "${REPO_ROOT}/couponsvc/translations" >&2 \
        || die "pybabel compile of couponsvc/translations failed (see scripts/translations)"

    if [[ -n "${lock_fd:-}" ]]; then
        exec {lock_fd}>&-
    fi
}

# --- PostgreSQL ------------------------------------------------------------

_pg_version() {
    # Highest installed major version that has a cluster directory.
    local versions
    versions="$(ls /etc/postgresql 2>/dev/null || true)"
    [[ -n "$versions" ]] || return 1
    printf '%s\n' "$versions" | sort -V | tail -n 1
}

_pg_trust_local() {
    # Trust connections over 127.0.0.1 and ::1 (a throwaway test server). First match wins
    # in pg_hba.conf, so the lines go on top.
    local hba="/etc/postgresql/$1/main/pg_hba.conf"
    [[ -f "$hba" ]] || die "no ${hba}"
    if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        say "pg_hba.conf: trust for 127.0.0.1 and ::1"
        local tmp
        tmp="$(mktemp)"
        {
            printf '# added by couponsvc scripts/lib/bootstrap.sh: local test server\n'
            printf 'host    all    all    127.0.0.1/32    trust\n'
            printf 'host    all    all    ::1/128         trust\n'
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba"
        rm -f "$tmp"
    fi
}

_pg_start() {
    local version
    version="$(_pg_version)" || return 1
    if [[ ! -d "/etc/postgresql/${version}/main" ]]; then
        say "creating PostgreSQL ${version} cluster main"
        pg_createcluster "$version" main >&2 || return 1
    fi
    say "starting PostgreSQL ${version}/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
}

ensure_postgres() {
    local host="${1:-127.0.0.1}" port="${2:-5432}" user="${3:-postgres}" dbname="${4:-test}"
    if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
        say "PostgreSQL on ${host}:${port}: running"
    else
        _is_local_host "$host" || die "PostgreSQL on ${host}:${port} does not answer (not local: not starting it)"
        local installed=""
        if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! _pg_version >/dev/null; then
            _apt_install postgresql postgresql-client
            installed=1
        fi
        local version
        version="$(_pg_version)" || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
        if [[ -n "$installed" ]]; then
            _pg_trust_local "$version"
            # The package may have started the cluster before trust was set: reload it.
            pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1 || true
        fi
        _pg_start
        _wait_for 30 pg_isready -q -h "$host" -p "$port" \
            || die "PostgreSQL did not come up on ${host}:${port} (see /var/log/postgresql/)"
        say "PostgreSQL on ${host}:${port}: started"
    fi

    # The tests connect to DB as USER to create their own databases: make sure it exists.
    if command -v psql >/dev/null 2>&1 && _is_local_host "$host" && [[ "$dbname" =~ ^[A-Za-z0-9_]+$ ]]; then
        local exists
        exists="$(psql -h "$host" -p "$port" -U "$user" -d postgres -w -tAc \
            "SELECT 1 FROM pg_database WHERE datname = '${dbname}'" 2>/dev/null || true)"
        if [[ "$exists" != 1 ]]; then
            say "creating database ${dbname}"
            createdb -h "$host" -p "$port" -U "$user" -w "$dbname" >&2 \
                || say "warning: could not create database ${dbname} as ${user} (check pg_hba.conf trust for ${host})"
        fi
    fi
}

# --- Redis -----------------------------------------------------------------

_redis_ping() {
    [[ "$(redis-cli -h "$1" -p "$2" ping 2>/dev/null)" == PONG ]]
}

ensure_redis() {
    local host="${1:-127.0.0.1}" port="${2:-6379}"
    if command -v redis-cli >/dev/null 2>&1 && _redis_ping "$host" "$port"; then
        say "Redis on ${host}:${port}: running"
        return 0
    fi
    _is_local_host "$host" || die "Redis on ${host}:${port} does not answer (not local: not starting it)"
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        _apt_install redis-server redis-tools
        # The package may have started its own server on 6379.
        if _wait_for 5 _redis_ping "$host" "$port"; then
            say "Redis on ${host}:${port}: running (started by the package)"
            return 0
        fi
    fi

    # Keeps nothing on disk; maxmemory-policy stays Redis's default, noeviction, as RQ needs.
    local dir=/var/lib/redis logdir=/var/log/redis logfile
    mkdir -p "$dir" "$logdir" 2>/dev/null || true
    if [[ ! -w "$dir" || ! -w "$logdir" ]]; then
        dir="${TMPDIR:-/tmp}/couponsvc-redis-${port}"
        logdir="$dir"
        mkdir -p "$dir"
    fi
    if [[ "$port" == 6379 ]]; then
        logfile="${logdir}/ci.log"
    else
        logfile="${logdir}/ci-${port}.log"
    fi
    say "starting Redis on ${host}:${port}"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no \
        --dir "$dir" --logfile "$logfile" >&2 || die "redis-server did not start (see ${logfile})"
    _wait_for 15 _redis_ping "$host" "$port" \
        || die "Redis did not answer on ${host}:${port} (see ${logfile})"
    say "Redis on ${host}:${port}: started"
}

# --- chromium, for the browser tests -------------------------------------------

_has_cjk_font() {
    if command -v dpkg-query >/dev/null 2>&1 \
        && [[ "$(dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null)" == "install ok installed" ]]; then
        return 0
    fi
    command -v fc-list >/dev/null 2>&1 && [[ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ]]
}

ensure_browser() {
    # Playwright drives Debian's chromium (its own browser download is not used); Chinese
    # pages need a CJK font or screenshots show boxes.
    local missing=()
    [[ -x "${COUPONSVC_CHROMIUM:-/usr/bin/chromium}" ]] || missing+=(chromium)
    _has_cjk_font || missing+=(fonts-noto-cjk)
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "chromium and a CJK font: installed"
        return 0
    fi
    if _may_apt_install; then
        _apt_install "${missing[@]}"
        say "chromium and a CJK font: installed"
    else
        say "warning: ${missing[*]} missing and not installable here (need root with apt-get, and COUPONSVC_NO_INSTALL unset): the browser tests will be skipped, or fail when CI is set"
    fi
}

# --- PgBouncer, HAProxy, Redis Sentinel: the multi-host test ------------------------

# The tests start these programs themselves, on addresses of their own; the services the
# packages would start (where policy-rc.d lets them) are stopped again.
_stop_package_service() {
    local service="$1"
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        service "$service" stop >/dev/null 2>&1 || true
    fi
}

# A program found on PATH or in the sbin directories (not on a user's PATH on Debian).
_has_program() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

# _ensure_programs WHAT PROGRAM:PACKAGE[:SERVICE]...
_ensure_programs() {
    local what="$1"
    shift
    local entry program package service missing=() services=()
    for entry in "$@"; do
        IFS=: read -r program package service <<<"$entry"
        if ! _has_program "$program"; then
            missing+=("$package")
            [[ -n "$service" ]] && services+=("$service")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "${what}: installed"
        return 0
    fi
    if _may_apt_install; then
        _apt_install "${missing[@]}"
        for service in "${services[@]}"; do
            _stop_package_service "$service"
        done
        say "${what}: installed"
    else
        say "warning: ${missing[*]} missing and not installable here (need root with apt-get, and COUPONSVC_NO_INSTALL unset): ${what} will be skipped, or fail when CI is set"
    fi
}

ensure_pgbouncer() {
    _ensure_programs "pgbouncer (the PgBouncer tests)" pgbouncer:pgbouncer:pgbouncer
}

ensure_multihost() {
    _ensure_programs "the multi-host test's programs" pgbouncer:pgbouncer:pgbouncer \
        haproxy:haproxy:haproxy redis-sentinel:redis-sentinel:redis-sentinel \
        redis-server:redis-server ip:iproute2 nsenter:util-linux
}
