#!/usr/bin/env bash
# Entrypoint of the Spark executor image (Dockerfile, target spark-executor) for
# DIAMOND_SPARK_MASTER=k8s://…: Spark's Kubernetes scheduler starts each executor pod with the
# argument `executor` and describes it in SPARK_* variables (the contract of Spark's own
# kubernetes/dockerfiles entrypoint, which the pyspark wheel does not ship). The executor is
# the JVM of the same pyspark install as the driver, at the same path, so the Python the driver
# names for its workers (the platform's virtualenv) exists here too.
set -euo pipefail

if [ "${1:-}" != "executor" ]; then
  exec "$@"
fi
shift

: "${SPARK_HOME:?the image sets SPARK_HOME to the virtualenv pyspark}"
# The driver passes its extra JVM options as SPARK_JAVA_OPT_0, _1, … in order.
mapfile -t java_opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')

exec "${JAVA_HOME}/bin/java" "${java_opts[@]}" \
  "-Xms${SPARK_EXECUTOR_MEMORY}" "-Xmx${SPARK_EXECUTOR_MEMORY}" \
  -cp "${SPARK_CLASSPATH:+${SPARK_CLASSPATH}:}${SPARK_HOME}/jars/*" \
  org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
  --driver-url "${SPARK_DRIVER_URL}" \
  --executor-id "${SPARK_EXECUTOR_ID}" \
  --cores "${SPARK_EXECUTOR_CORES}" \
  --app-id "${SPARK_APPLICATION_ID}" \
  --hostname "${SPARK_EXECUTOR_POD_IP}" \
  --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
  --podName "${SPARK_EXECUTOR_POD_NAME}" \
  "$@"
