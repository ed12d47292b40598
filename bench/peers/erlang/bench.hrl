%% bench.hrl: what every Erlang peer shares, as bench/bench.h does for the libactor benchmarks:
%% the one RESULT line format, argument parsing, the clock and the resident set size.
%%
%% Each peer is an escript that includes this file and is compiled (-mode(compile)) before it
%% runs, with the VM's defaults: one scheduler per CPU unless +S (or ERL_FLAGS) says otherwise.
%% The only flag the scripts set is +P, the process limit, in the ones that need more than the
%% default 262,144 processes alive at once.

-compile({nowarn_unused_function, [{result, 4}, {arg, 4}, {fail, 2}, {now_ns, 0}, {ms, 2},
                                    {secs, 2}, {rss_bytes, 0}]}).

%% Prints one RESULT line, with the precision bench_result() uses.
result(Name, Metric, Value, Unit) ->
    V = if Value >= 10000 -> integer_to_list(round(Value));
           true -> io_lib:format("~.3f", [float(Value)])
        end,
    io:format("RESULT name=~s impl=erlang metric=~s value=~s unit=~s~n", [Name, Metric, V, Unit]).

%% The I-th argument (1-based) as a whole number in [1, Max], or Def when absent.
arg(Args, I, Def, _Max) when length(Args) < I -> Def;
arg(Args, I, _Def, Max) ->
    S = lists:nth(I, Args),
    case string:to_integer(S) of
        {V, ""} when V >= 1, V =< Max -> V;
        _ ->
            io:format(standard_error,
                      "argument ~b: expected a whole number in [1, ~b], got '~s'~n", [I, Max, S]),
            halt(2)
    end.

%% Reports a wrong result and exits non-zero: a benchmark that did not check out reports nothing.
fail(Fmt, Args) ->
    io:format(standard_error, Fmt ++ "~n", Args),
    halt(1).

now_ns() -> erlang:monotonic_time(nanosecond).
ms(T0, T1) -> (T1 - T0) / 1.0e6.
secs(T0, T1) -> (T1 - T0) / 1.0e9.

%% The resident set size in bytes, from /proc/self/statm, or 0 without /proc.
rss_bytes() ->
    case file:read_file("/proc/self/statm") of
        {ok, B} ->
            [_Size, Resident | _] = string:lexemes(binary_to_list(B), " \n"),
            list_to_integer(Resident) * 4096;
        _ -> 0
    end.
