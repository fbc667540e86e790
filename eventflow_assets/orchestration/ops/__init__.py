"""The ops of the jobs that are not asset materializations: the stream's host, the producer, maintenance."""
