#!/usr/bin/env bash
# Are RabbitMQ, MariaDB and Redis reachable? `check` says which are not and how
# to start them; `start` starts what is down (as DEVELOPERS.md says) and waits.
set -u
mode=${1:-check}
declare -A PORTS=([mariadb]=3306 [redis]=6379 [rabbitmq]=5672)
declare -A START=(
  [mariadb]="start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
  [redis]="redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
  [rabbitmq]="rabbitmq-server -detached"
)
up() { timeout 2 bash -c "echo > /dev/tcp/127.0.0.1/$1" 2>/dev/null; }
down=()
for name in mariadb redis rabbitmq; do up "${PORTS[$name]}" || down+=("$name"); done
[ ${#down[@]} -eq 0 ] && exit 0
if [ "$mode" = check ]; then
  for name in "${down[@]}"; do
    echo "$name is not reachable on 127.0.0.1:${PORTS[$name]}. Start it with: ${START[$name]}" >&2
  done
  command -v docker >/dev/null && docker info >/dev/null 2>&1 &&
    echo "(or, with Docker: docker compose up -d rabbitmq mariadb redis)" >&2
  exit 1
fi
for name in "${down[@]}"; do
  echo "starting $name" >&2
  eval "${START[$name]}" >/dev/null 2>&1 || true
done
for name in "${down[@]}"; do
  for _ in $(seq 1 90); do up "${PORTS[$name]}" && break; sleep 1; done
  up "${PORTS[$name]}" || { echo "$name did not come up on port ${PORTS[$name]}" >&2; exit 1; }
done
# RabbitMQ opens its port before it accepts logins; wait until it is really up.
if [[ " ${down[*]} " == *" rabbitmq "* ]]; then
  timeout 60 rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
exit 0
