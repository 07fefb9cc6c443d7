package org.cpsignairflow;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small option parser for one command: each option has one or more names (e.g.
 * {@code -mo}, {@code --model-out}) and takes no value (a flag), exactly one value, a chemical
 * file ({@code FORMAT [key=value ...] PATH}) or one or more values (until the next option).
 * {@code --name=value} is accepted for options taking values.
 */
final class Options {

    enum Arity { FLAG, ONE, CHEM_FILE, MANY }

    static final class UsageError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageError(String message) {
            super(message);
        }
    }

    private static final class Spec {
        final String key;
        final Arity arity;

        Spec(String key, Arity arity) {
            this.key = key;
            this.arity = arity;
        }
    }

    private final String command;
    private final Map<String, Spec> byName = new HashMap<>();
    private final Map<String, List<String>> values = new LinkedHashMap<>();

    Options(String command) {
        this.command = command;
    }

    /** Declare an option; the first name is its key. */
    Options option(Arity arity, String... names) {
        Spec spec = new Spec(names[0], arity);
        for (String name : names) {
            byName.put(name, spec);
        }
        return this;
    }

    private boolean isOption(String token) {
        if (byName.containsKey(token)) {
            return true;
        }
        int eq = token.indexOf('=');
        return token.startsWith("-") && eq > 0 && byName.containsKey(token.substring(0, eq));
    }

    Options parse(List<String> args) {
        int i = 0;
        while (i < args.size()) {
            String token = args.get(i++);
            String inline = null;
            Spec spec = byName.get(token);
            if (spec == null && token.startsWith("-") && token.indexOf('=') > 0) {
                spec = byName.get(token.substring(0, token.indexOf('=')));
                inline = token.substring(token.indexOf('=') + 1);
            }
            if (spec == null) {
                throw new UsageError(token.startsWith("-")
                        ? "Unknown option: '" + token + "' (not supported by " + command + ")"
                        : "Unexpected parameter: '" + token + "'");
            }
            List<String> vals = new ArrayList<>();
            switch (spec.arity) {
                case FLAG:
                    if (inline != null) {
                        throw new UsageError("Option " + spec.key + " takes no value");
                    }
                    vals.add("true");
                    break;
                case ONE:
                    if (inline != null) {
                        vals.add(inline);
                    } else {
                        if (i >= args.size()) {
                            throw new UsageError("Missing value for option " + token);
                        }
                        vals.add(args.get(i++));
                    }
                    break;
                case MANY:
                case CHEM_FILE:
                    if (inline != null) {
                        vals.add(inline);
                    }
                    while (i < args.size() && !isOption(args.get(i))) {
                        vals.add(args.get(i++));
                    }
                    if (vals.isEmpty()) {
                        throw new UsageError("Missing value for option " + token);
                    }
                    break;
                default:
                    throw new IllegalStateException();
            }
            // as picocli: a repeated single-valued option keeps the last value, lists accumulate
            if (spec.arity == Arity.MANY && values.containsKey(spec.key)) {
                values.get(spec.key).addAll(vals);
            } else {
                values.put(spec.key, vals);
            }
        }
        return this;
    }

    boolean has(String key) {
        return values.containsKey(key);
    }

    String get(String key) {
        List<String> v = values.get(key);
        return v == null ? null : v.get(v.size() - 1);
    }

    String require(String key) {
        String v = get(key);
        if (v == null || v.isEmpty()) {
            throw new UsageError("Missing required option: '" + key + "'");
        }
        return v;
    }

    List<String> list(String key) {
        List<String> v = values.get(key);
        return v == null ? new ArrayList<>() : v;
    }

    /** The values of a list option, each split on whitespace and commas (as CPSign does). */
    List<String> splitList(String key) {
        List<String> out = new ArrayList<>();
        for (String v : list(key)) {
            for (String part : v.split("[\\s,]+")) {
                if (!part.isEmpty()) {
                    out.add(part);
                }
            }
        }
        return out;
    }
}
