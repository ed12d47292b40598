#!/usr/bin/env escript
%% echo_server.escript: the Erlang peer of bench/echo_server.c: a TCP echo server, one process
%% per connection.
%%
%% Usage: escript echo_server.escript [--port N] [--bind ADDR]   (defaults 0, any free port,
%%        and 127.0.0.1)
%%
%% Prints "PORT <n>" on stdout once it listens, then echoes every byte each connection sends
%% back to it, in order, until the peer closes, for any number of connections, until SIGTERM
%% ends it at once: os:set_signal(sigterm, default) gives the signal its default action, where
%% the VM's own would be an orderly init:stop() that takes a second, with nothing here to save.
%% Bad arguments: a message on stderr and exit 2; a port it cannot listen on: exit 1.
%%
%% gen_tcp in binary mode, with the VM's defaults (one scheduler per CPU, the inet driver).
%% Acceptors, one per scheduler, block in gen_tcp:accept/1 on the shared listen socket; an
%% acceptor that gets a connection starts its replacement and becomes that connection's
%% process, so the socket never changes owner. A connection runs in {active, N} mode: the driver
%% sends the bytes as {tcp, S, Data} messages as they arrive, with no request from the process
%% per read, and the process answers each with gen_tcp:send/2. That is the fastest mode that
%% still has flow control: a passive gen_tcp:recv/2 is a call into the driver and a reply for
%% every read, {active, once} a setopts call for every read, while {active, N} re-arms with one
%% setopts after N messages ({tcp_passive, S}) and {active, true} would let a client fill the
%% mailbox without bound. Flow control the other way is gen_tcp:send/2's: it blocks while the
%% driver's queue is over its high-water mark, so a client that stops reading stops its
%% connection's reads. The listen options do what bench/echo_epoll.c does: nodelay
%% (TCP_NODELAY, off by default in gen_tcp), reuseaddr, and a backlog of 1,024 (the default is
%% 5) for the 1,000 connections the benchmark opens at once. The VM cannot raise
%% RLIMIT_NOFILE: it keeps the soft limit it starts with (ulimit -n; erlang:system_info(check_io)
%% shows it as max_fds). It holds about 20 descriptors of its own, so the common 1,024 just
%% fits 1,000 connections; an accept that runs out of descriptors is reported on stderr and
%% retried.
-mode(compile).

%% Messages a connection takes before the driver asks it to re-arm.
-define(ACTIVE, 100).

main(Args) ->
    ok = os:set_signal(sigterm, default),
    {Port, Ip} = parse(Args, 0, {127, 0, 0, 1}),
    Family = case tuple_size(Ip) of 4 -> inet; 8 -> inet6 end,
    Opts = [binary, Family, {ip, Ip}, {active, ?ACTIVE}, {nodelay, true}, {reuseaddr, true},
            {backlog, 1024}],
    case gen_tcp:listen(Port, Opts) of
        {ok, L} ->
            {ok, Bound} = inet:port(L),
            io:format("PORT ~b~n", [Bound]),
            [spawn(fun() -> accept(L) end) || _ <- lists:seq(1, erlang:system_info(schedulers))],
            %% The listen socket lives as long as this process, its owner.
            receive after infinity -> ok end;
        {error, Reason} ->
            io:format(standard_error, "echo_server: cannot listen on ~s:~b: ~s~n",
                      [inet:ntoa(Ip), Port, inet:format_error(Reason)]),
            halt(1)
    end.

parse([], Port, Ip) -> {Port, Ip};
parse(["--port", S | Rest], _Port, Ip) ->
    case string:to_integer(S) of
        {P, ""} when P >= 0, P =< 65535 -> parse(Rest, P, Ip);
        _ -> usage("--port must be in [0, 65535], got '" ++ S ++ "'")
    end;
parse(["--bind", S | Rest], Port, _Ip) ->
    case inet:parse_address(S) of
        {ok, Ip} -> parse(Rest, Port, Ip);
        _ -> usage("--bind must be a numeric IP address, got '" ++ S ++ "'")
    end;
parse([Opt], _Port, _Ip) when Opt =:= "--port"; Opt =:= "--bind" ->
    usage("missing value for " ++ Opt);
parse([Arg | _], _Port, _Ip) -> usage("unexpected argument '" ++ Arg ++ "'").

usage(What) ->
    io:format(standard_error, "echo_server: ~s~nusage: escript echo_server.escript "
              "[--port N] [--bind ADDR]~n", [What]),
    halt(2).

accept(L) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            spawn(fun() -> accept(L) end),
            echo(S);
        {error, closed} -> ok;
        {error, Reason} ->
            %% emfile and the like: say so, back off a moment, go on.
            io:format(standard_error, "echo_server: accept: ~s~n", [inet:format_error(Reason)]),
            timer:sleep(10),
            accept(L)
    end.

echo(S) ->
    receive
        {tcp, S, Data} ->
            case gen_tcp:send(S, Data) of
                ok -> echo(S);
                {error, _} -> gen_tcp:close(S)
            end;
        {tcp_passive, S} ->
            %% An error here means the socket is closing: {tcp_closed, S} follows.
            _ = inet:setopts(S, [{active, ?ACTIVE}]),
            echo(S);
        {tcp_closed, S} -> ok;
        {tcp_error, S, _Reason} -> gen_tcp:close(S)
    end.
