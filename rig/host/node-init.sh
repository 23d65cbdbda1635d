#!/bin/bash
# PID 1 of one rig node: runs inside fresh mount/UTS/IPC/PID namespaces
# (unshare) in the node's network namespace. Builds the node's own root (an
# overlay over the operating system's root LOWER_DIR, the host's / for
# Debian 12 or a built Debian 13 root, so every write stays in the node's
# layer), its own /dev, /run and /tmp, pivots into it, then only reaps children.
# Usage: node-init.sh NAME STATE_DIR LOWER_DIR [LOOP_DEVICE VOLUME_ID]
set -euo pipefail
name=$1 state=$2 lower=$3 loop_device=${4:-} volume_id=${5:-}
root=$state/root

mount -t overlay overlay -o "lowerdir=$lower,upperdir=$state/upper,workdir=$state/work" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"

# The node's own /dev: a tmpfs with the host's harmless character devices.
mount -t tmpfs -o mode=0755,size=8m tmpfs "$root/dev"
for device in null zero full random urandom tty; do
  touch "$root/dev/$device"
  mount --bind "/dev/$device" "$root/dev/$device"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

# An EBS data volume shows up on a Nitro instance under its volume id.
if [[ -n $loop_device ]]; then
  touch "$root/dev/nvme1n1"
  mount --bind "$loop_device" "$root/dev/nvme1n1"
  mkdir -p "$root/dev/disk/by-id"
  ln -s ../../nvme1n1 "$root/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volume_id//-/}"
fi

mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mkdir -p "$root/run/lock"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
# The systemctl stand-in answers for systemd, also by absolute path.
[[ -e $root/usr/bin/systemctl ]] || touch "$root/usr/bin/systemctl"
mount --bind "$root/usr/local/sbin/systemctl" "$root/usr/bin/systemctl"

hostname "$name"
cd "$root"
mkdir -p .host-root
pivot_root . .host-root
cd /
umount -l /.host-root
rmdir /.host-root
touch /run/rig-node-ready

# Orphans are re-parented to PID 1: reap them, or they stay zombies.
trap 'exit 0' TERM
while true; do
  sleep 3600 &
  wait -n || true
done
