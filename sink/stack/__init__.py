"""The local stack: one Apache Kafka broker (KRaft, jars from Maven Central) and one
PostgreSQL server, on free loopback ports under one directory, for development, the demo
and the tests. Inside: ``local`` (the stack and ``warp-sink stack``), ``kafka`` and
``postgres`` (one server each), ``process`` (starting and stopping processes).
"""

from sink.stack.local import (
    JVM_OPTS,
    KAFKA_READY_S,
    LOG4J2,
    PG_DATABASE,
    PG_PASSWORD,
    PG_ROLE,
    POM,
    STOP_TIMEOUT_S,
    LocalStack,
    StackError,
    StackInfo,
    create_topic,
    kafka_classpath,
    main,
    pid_alive,
)

__all__ = [
    "JVM_OPTS",
    "KAFKA_READY_S",
    "LOG4J2",
    "PG_DATABASE",
    "PG_PASSWORD",
    "PG_ROLE",
    "POM",
    "STOP_TIMEOUT_S",
    "LocalStack",
    "StackError",
    "StackInfo",
    "create_topic",
    "kafka_classpath",
    "main",
    "pid_alive",
]
