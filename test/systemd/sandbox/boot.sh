#!/bin/sh
# PID 1 of the sandbox (run by run.sh inside new pid, mount, net, cgroup,
# uts and ipc namespaces): private /run, /tmp and cgroup view, loopback up,
# then systemd as the service manager of a "container". Nothing here is
# visible outside the namespaces. $1: run.sh's work directory.
set -eu
src=$1
exec >>"$src/console" 2>&1
mount --make-rprivate /
mount --bind "$src/console" /dev/console
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/system /run/sandbox
cp -r "$src"/. /run/sandbox/
cp /run/sandbox/units/* /run/systemd/system/
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
# Guards: nothing may pull sysinit.target (systemd-sysctl would apply the
# host's sysctl.d to global kernel knobs) or udev.
for u in sysinit.target basic.target systemd-sysctl.service systemd-udevd.service systemd-modules-load.service; do
  ln -sf /dev/null "/run/systemd/system/$u"
done
umount -l /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
# The sysctl.d drop-in's setting, in this network namespace only.
echo 1 > /proc/sys/net/ipv4/tcp_migrate_req
hostname handover-sandbox
export container=handover-sandbox
exec /lib/systemd/systemd --system --unit=sandbox.target --log-target=console --show-status=no
