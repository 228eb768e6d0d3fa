# Sourced by scripts/setup.sh: apt-get that waits for another package manager.
#
# On a fresh machine an automatic update (unattended-upgrades, cloud-init, another
# apt-get) often holds the dpkg or apt lists lock for a few minutes; apt-get then fails
# at once with "Could not get lock".  apt_get_wait runs apt-get with the same
# arguments and, while it fails for a lock only, says so and tries again every
# GREENPATH_APT_POLL seconds (default 5) for up to GREENPATH_APT_WAIT seconds (default
# 600).  Any other failure is reported as it is, at once.

apt_get_wait() {
  local wait_s="${GREENPATH_APT_WAIT:-600}" poll_s="${GREENPATH_APT_POLL:-5}"
  local start=$SECONDS out status said=0
  while true; do
    status=0
    # DPkg::Lock::Timeout makes apt itself wait for the dpkg lock (apt >= 1.9.11);
    # the loop also covers the lists lock of `apt-get update` and older apt.
    out=$(apt-get -o DPkg::Lock::Timeout="$poll_s" "$@" 2>&1) || status=$?
    if [ "$status" = 0 ]; then
      [ -n "$out" ] && printf '%s\n' "$out"
      return 0
    fi
    if printf '%s' "$out" | grep -qE 'Could not get lock|Unable to acquire the dpkg|Unable to lock'; then
      if [ $((SECONDS - start)) -lt "$wait_s" ]; then
        if [ "$said" = 0 ]; then
          echo "setup: another package manager holds the apt/dpkg lock; waiting up to ${wait_s} s (GREENPATH_APT_WAIT)" >&2
          said=1
        fi
        sleep "$poll_s"
        continue
      fi
      echo "setup: the apt/dpkg lock was still held after ${wait_s} s; try again when the other package manager has finished" >&2
    fi
    printf '%s\n' "$out" >&2
    return "$status"
  done
}
