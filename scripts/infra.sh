#!/usr/bin/env bash
# MariaDB, Redis and RabbitMQ for MAE on this machine — one script for `make up` and `make test`.
#
#   scripts/infra.sh start   start what is down; install what is missing first (as root, with apt,
#                            on Debian/Ubuntu); then wait until each answers
#   scripts/infra.sh check   only say what is down and how to bring it up (exit 1 if anything is)
#
# A server that already answers is never touched: not restarted, not reconfigured. Only a MariaDB
# this script has just installed gets MAE's first-run step (root may log in over TCP with an empty
# password, as `config/*.yaml` expect; a stock Debian root logs in only over the socket).
# RabbitMQ's stock guest account (localhost only) and Redis as installed are enough; MAE makes its
# own databases (`shared/migrate.py`) and vhosts (the tests, with rabbitmqctl).
#
# Settings (for tests and other machines): MAE_INFRA_HOST (127.0.0.1), MAE_MARIADB_PORT (3306),
# MAE_REDIS_PORT (6379), MAE_RABBITMQ_PORT (5672), MAE_INFRA_WAIT (seconds per server, 90),
# MAE_INFRA_SBIN (where daemons live besides PATH: /usr/sbin:/usr/local/sbin), MAE_INFRA_UID
# (the user id that decides whether apt may be used; `id -u`).
set -u
mode=${1:-check}
host=${MAE_INFRA_HOST:-127.0.0.1}
wait_s=${MAE_INFRA_WAIT:-90}
uid=${MAE_INFRA_UID:-$(id -u)}
names=(mariadb redis rabbitmq)
declare -A PORTS=([mariadb]=${MAE_MARIADB_PORT:-3306} [redis]=${MAE_REDIS_PORT:-6379} [rabbitmq]=${MAE_RABBITMQ_PORT:-5672})
declare -A BINARY=([mariadb]=mariadbd [redis]=redis-server [rabbitmq]=rabbitmq-server)
declare -A PACKAGE=([mariadb]=mariadb-server [redis]=redis-server [rabbitmq]=rabbitmq-server)
SEARCH="$PATH:${MAE_INFRA_SBIN-/usr/sbin:/usr/local/sbin}"

say() { echo "infra: $*" >&2; }
up() { timeout 2 bash -c "echo > /dev/tcp/$host/$1" 2>/dev/null; }
find_bin() { PATH="$SEARCH" command -v "$1" 2>/dev/null; }
start_cmd() {  # how each server is started, as DEVELOPERS.md says (no systemd needed)
  local bin; bin=$(find_bin "${BINARY[$1]}")
  case $1 in
    mariadb) echo "start-stop-daemon --start --oknodo --background --exec $bin -- --port=${PORTS[mariadb]}" ;;
    redis) echo "$bin --daemonize yes --bind $host --port ${PORTS[redis]} --save '' --appendonly no" ;;
    rabbitmq) echo "$bin -detached" ;;
  esac
}
has_docker() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
can_apt() { [ "$uid" = 0 ] && command -v apt-get >/dev/null; }

down=()
for name in "${names[@]}"; do up "${PORTS[$name]}" || down+=("$name"); done
[ ${#down[@]} -eq 0 ] && exit 0
missing=()
for name in "${down[@]}"; do find_bin "${BINARY[$name]}" >/dev/null || missing+=("$name"); done

if [ "$mode" = check ]; then
  for name in "${down[@]}"; do
    if [[ " ${missing[*]} " == *" $name "* ]]; then
      say "$name is not reachable on $host:${PORTS[$name]} and not installed (package ${PACKAGE[$name]})."
    else
      say "$name is not reachable on $host:${PORTS[$name]}. Start it with: $(start_cmd "$name")"
    fi
  done
  say "\`make up\` and \`make test\` start (and, as root on Debian/Ubuntu, install) them: scripts/infra.sh start"
  has_docker && say "or, with Docker: docker compose up -d rabbitmq mariadb redis"
  exit 1
fi

installed=()
if [ ${#missing[@]} -gt 0 ]; then
  packages=(); for name in "${missing[@]}"; do packages+=("${PACKAGE[$name]}"); done
  if can_apt; then
    say "installing ${packages[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2 \
      || { say "apt-get could not install ${packages[*]}"; exit 1; }
    installed=("${missing[@]}")
    for name in "${missing[@]}"; do
      find_bin "${BINARY[$name]}" >/dev/null || { say "${PACKAGE[$name]} is installed but ${BINARY[$name]} is not on PATH"; exit 1; }
    done
  elif has_docker; then
    say "${missing[*]} not installed here; Docker is: run \`docker compose up -d rabbitmq mariadb redis\` in this directory, then again."
    exit 1
  else
    say "MAE needs MariaDB (or MySQL 8) on $host:${PORTS[mariadb]}, Redis on $host:${PORTS[redis]} and RabbitMQ on" \
        "$host:${PORTS[rabbitmq]}; not installed here: ${missing[*]}. On Debian or Ubuntu run this again as root" \
        "(it installs ${packages[*]} with apt-get), or install them with your system's packages (Homebrew:" \
        "mariadb redis rabbitmq), or start them with Docker: docker compose up -d rabbitmq mariadb redis." \
        "Stock installs are enough: the tests log in as MariaDB root with an empty password and RabbitMQ guest/guest."
    exit 1
  fi
fi

for name in "${down[@]}"; do
  up "${PORTS[$name]}" && continue  # the package's own start (systemd) brought it up
  say "starting $name"
  [ "$name" = mariadb ] && { id mysql >/dev/null 2>&1 && install -d -o mysql -g mysql /run/mysqld 2>/dev/null; }
  eval "$(start_cmd "$name")" >/dev/null 2>&1 || true
done
for name in "${down[@]}"; do
  for _ in $(seq 1 "$wait_s"); do up "${PORTS[$name]}" && break; sleep 1; done
  up "${PORTS[$name]}" || { say "$name did not come up on $host:${PORTS[$name]} (started with: $(start_cmd "$name"))"; exit 1; }
done
# RabbitMQ opens its port before it accepts logins; wait until it is really up.
if [[ " ${down[*]} " == *" rabbitmq "* ]] && command -v rabbitmqctl >/dev/null; then
  timeout 60 rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
if [[ " ${installed[*]} " == *" mariadb "* ]]; then  # MAE's first-run step, on this new server only
  mariadb --protocol=socket -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR \
    mysql_native_password USING PASSWORD('')" >&2 || say "could not let root log in over TCP; set DB_URL to an account that can"
fi
say "up: ${down[*]}"
exit 0
