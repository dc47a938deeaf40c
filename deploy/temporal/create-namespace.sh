#!/bin/sh
# The service's Temporal namespace, created once (idempotent). `booking setup` then sets
# its retention, registers the search attributes and the retention schedule; on
# Temporal Cloud the namespace is created in the Cloud console instead.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}"
ATTEMPTS=${ATTEMPTS:-60}

retry() {
    what=$1
    shift
    attempt=1
    until "$@" >/dev/null 2>&1; do
        if [ "${attempt}" -ge "${ATTEMPTS}" ]; then
            echo "temporal namespace: ${what} did not succeed after ${ATTEMPTS} attempts" >&2
            exit 1
        fi
        attempt=$((attempt + 1))
        sleep 2
    done
}

retry "the cluster health check" temporal operator cluster health --address "${TEMPORAL_ADDRESS}"
if temporal operator namespace describe --namespace "${NAMESPACE}" --address "${TEMPORAL_ADDRESS}" >/dev/null 2>&1; then
    echo "temporal namespace: ${NAMESPACE} exists"
else
    retry "creating ${NAMESPACE}" temporal operator namespace create --namespace "${NAMESPACE}" --address "${TEMPORAL_ADDRESS}"
    echo "temporal namespace: ${NAMESPACE} created"
fi
# A new namespace reaches every frontend's cache within seconds; until it has, calls
# in it fail. Listing its workflows is such a call: once it answers, `booking setup`
# and the services can start.
retry "using ${NAMESPACE}" temporal workflow list --namespace "${NAMESPACE}" --address "${TEMPORAL_ADDRESS}" --limit 1
echo "temporal namespace: ${NAMESPACE} ready"
