package org.cpsignairflow;

import java.io.IOException;
import java.io.Reader;
import java.io.StreamTokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

/**
 * Expands {@code @file} arguments the way picocli (and so the CPSign CLI) does by default:
 * tokens are separated by whitespace or newlines; double or single quotes group a token and
 * inside them backslash escapes apply ({@code \"}, {@code \\}, {@code \t}, {@code \n}, ...);
 * {@code #} outside quotes starts a comment that runs to the end of the line. An argument
 * file may name further {@code @files}. An {@code @name} whose file does not exist is kept
 * as a literal argument.
 */
final class ArgFiles {

    private static final int MAX_DEPTH = 32;

    private ArgFiles() {
    }

    static List<String> expand(List<String> args) throws IOException {
        List<String> out = new ArrayList<>();
        for (String arg : args) {
            add(arg, out, 0);
        }
        return out;
    }

    private static void add(String arg, List<String> out, int depth) throws IOException {
        if (arg.length() > 1 && arg.charAt(0) == '@' && arg.charAt(1) != '@') {
            Path file = Paths.get(arg.substring(1));
            if (Files.isRegularFile(file)) {
                if (depth >= MAX_DEPTH) {
                    throw new IOException("@-files nested too deeply at " + file);
                }
                for (String token : tokens(file)) {
                    add(token, out, depth + 1);
                }
                return;
            }
        }
        out.add(arg);
    }

    /** The tokens of one argument file. */
    static List<String> tokens(Path file) throws IOException {
        List<String> tokens = new ArrayList<>();
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            StreamTokenizer tok = new StreamTokenizer(reader);
            tok.resetSyntax();
            tok.wordChars(' ', 255);
            tok.whitespaceChars(0, ' ');
            tok.commentChar('#');
            tok.quoteChar('"');
            tok.quoteChar('\'');
            while (tok.nextToken() != StreamTokenizer.TT_EOF) {
                tokens.add(tok.sval);
            }
        }
        return tokens;
    }
}
