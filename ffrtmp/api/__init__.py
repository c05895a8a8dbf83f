"""The HTTP API and the web console: the farm for programs that don't speak NATS, and for people.

A thin, stateless face over ``ffrtmp.client``: every request is a command on the log or a read of
it, so any number of instances can run behind a load balancer and the log stays the only truth.
"""
