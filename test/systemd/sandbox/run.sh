#!/usr/bin/env bash
# A real systemd (the distribution's, as PID 1 of private namespaces: no
# systemd is needed on the host, and nothing leaks out of them) runs
# systemd/handover-notify.service; this script drives `systemctl reload`
# under load, a reload that rolls back (the job must fail), and reads the
# journal by priority. Needs root, systemd, iproute2, util-linux and wrk.
#   test/systemd/sandbox/run.sh [reloads=20]
set -euo pipefail
cd "$(dirname "$0")/../../.."
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces, systemd as their PID 1)"; exit 2; }
for c in unshare nsenter ip wrk /lib/systemd/systemd; do command -v "$c" >/dev/null || { echo "missing: $c"; exit 2; }; done
[ -e dist/main.js ] || { echo "build first: npm run build"; exit 2; }
root=$PWD
reloads=${1:-20}
work=$(mktemp -d /var/tmp/handover-sandbox.XXXXXX)
cg=/sys/fs/cgroup/unified/handover-sandbox-$$
[ -d /sys/fs/cgroup/unified ] || cg=/sys/fs/cgroup/handover-sandbox-$$
pid1=
cleanup() {
  [ -n "$pid1" ] && kill -KILL "$pid1" 2>/dev/null || true
  sleep 0.5
  # Depth first: systemd made its slices and scopes under ours.
  [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

chmod 755 "$work"
mkdir -p "$work/units" "$work/etc"
node=$(command -v node)
cat > "$work/etc/handover.yaml" <<YAML
app: $root/examples/hello/app.js
workers: 2
listen: [{ address: 127.0.0.1:8080 }]
reload: { watch: false, drain_timeout: 5s }
control: { socket: /run/handover/handover.sock }
user: nobody
group: nogroup
YAML
# The shipped unit, pointed at this checkout; no network-online.target and
# no default dependencies in the sandbox (no sysinit.target here).
sed -e "s#/usr/bin/handover#$node $root/dist/main.js#g" \
    -e "s#/etc/handover/handover.yaml#/run/sandbox/etc/handover.yaml#g" \
    -e '/^Wants=network-online.target/d' -e '/^After=network-online.target/d' \
    -e 's/^\[Unit\]/[Unit]\nDefaultDependencies=no/' \
    systemd/handover-notify.service > "$work/units/handover.service"
# Two services that run node under systemd's MemoryDenyWriteExecute= filter.
for flags in "" "--jitless"; do
  cat > "$work/units/mdwe-jit${flags:+less}.service" <<UNIT
[Unit]
DefaultDependencies=no
[Service]
Type=oneshot
MemoryDenyWriteExecute=yes
ExecStart=/bin/grep -E ^Seccomp: /proc/self/status
ExecStart=$node $flags -e "let s = 0; for (let i = 0; i < 1e7; i++) s += i; console.log('sum', s)"
UNIT
done
cat > "$work/units/sandbox.target" <<UNIT
[Unit]
DefaultDependencies=no
Wants=systemd-journald.service handover.service
UNIT

mkdir -p "$cg"
sh -c 'echo $$ > "$1/cgroup.procs"; exec unshare --pid --fork --mount --net --cgroup --uts --ipc --mount-proc --kill-child "$2" "$3"' \
  sh "$cg" "$root/test/systemd/sandbox/boot.sh" "$work" &
launcher=$!
for _ in $(seq 50); do pid1=$(cat "/proc/$launcher/task/$launcher/children" 2>/dev/null | awk '{print $1}'); [ -n "$pid1" ] && break; sleep 0.1; done
[ -n "$pid1" ] || { echo "sandbox did not start"; cat "$work/console"; exit 1; }
in_ns() { nsenter -t "$pid1" -m -p -n -u -- "$@"; }
for _ in $(seq 100); do [ -e "/proc/$pid1/ns/uts" ] || { echo "systemd exited:"; cat "$work/console"; exit 1; }; in_ns systemctl is-active -q handover 2>/dev/null && break; sleep 0.2; done
in_ns systemctl --no-pager status handover | head -5

echo "== $reloads x systemctl reload under load (wrk, 8 connections, keep-alive)"
in_ns wrk -t1 -c8 -d$((reloads + 4))s --latency http://127.0.0.1:8080/ > "$work/wrk.txt" &
wrk=$!
sleep 2
failed=0
started=$(date +%s%N)
for _ in $(seq "$reloads"); do in_ns systemctl reload handover || failed=$((failed + 1)); sleep 1; done
took=$(( ($(date +%s%N) - started) / 1000000 - reloads * 1000 ))
wait "$wrk"
# wrk prints "Socket errors" and "Non-2xx" lines only when there were any.
grep -E "requests in|Socket errors|Non-2xx| 99%" "$work/wrk.txt" || true
grep -qE "Socket errors|Non-2xx" "$work/wrk.txt" || echo "no socket errors, no non-2xx responses"
echo "reload jobs failed: $failed of $reloads; systemctl reload took $((took / reloads)) ms on average"
in_ns systemctl show handover -p StatusText -p ActiveState -p SubState -p NRestarts

echo "== a reload that rolls back must fail the job"
sed -i "s#examples/hello/app.js#test/fixtures/apps/throw-at-init.js#" "$work/etc/handover.yaml"
in_ns sh -c "sed -i 's#examples/hello/app.js#test/fixtures/apps/throw-at-init.js#' /run/sandbox/etc/handover.yaml"
if in_ns systemctl reload handover; then echo "UNEXPECTED: the reload job succeeded"; else echo "reload job failed, as it must (exit $?)"; fi
in_ns systemctl show handover -p StatusText -p ActiveState -p SubState

echo "== journalctl -u handover -p warning (journal format, priorities from the <N> prefixes)"
in_ns journalctl --no-pager -u handover -p warning -o cat | tail -8
echo "== journalctl -u handover, worker lines"
in_ns journalctl --no-pager -u handover -o cat | grep -m3 '\[g1 w' || true

echo "== MemoryDenyWriteExecute=yes, systemd's own filter: node, then node --jitless"
for u in mdwe-jit mdwe-jitless; do
  in_ns systemctl start "$u.service" 2>/dev/null || true
  echo "$u: $(in_ns systemctl show "$u.service" -p Result -p ExecMainCode -p ExecMainStatus | tr '\n' ' ')"
  in_ns journalctl --no-pager -u "$u.service" -o cat | grep -E "^Seccomp|^sum|Check failed" | tail -3
done

echo "== systemd-analyze security handover"
in_ns systemd-analyze security --no-pager handover | tail -1

echo "== systemctl stop"
time in_ns systemctl stop handover
in_ns systemctl show handover -p ActiveState -p Result -p ExecMainStatus
