package org.cpsignairflow;

import java.io.File;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import com.arosbio.cheminf.ChemClassifier;
import com.arosbio.cheminf.ChemPredictor;
import com.arosbio.cheminf.data.ChemDataset;
import com.arosbio.commons.CollectionUtils;
import com.arosbio.commons.GlobalConfig;
import com.arosbio.commons.GlobalConfig.Defaults.PredictorType;
import com.arosbio.commons.MathUtils;
import com.arosbio.commons.config.BooleanConfig;
import com.arosbio.commons.config.Configurable.ConfigParameter;
import com.arosbio.commons.config.IntegerConfig;
import com.arosbio.commons.config.NumericConfig;
import com.arosbio.ml.cp.ConformalClassifier;
import com.arosbio.ml.cp.acp.ACPRegressor;
import com.arosbio.ml.cp.nonconf.NCM;
import com.arosbio.ml.gridsearch.GridSearch;
import com.arosbio.ml.gridsearch.GridSearch.EvalStatus;
import com.arosbio.ml.gridsearch.GridSearch.GSResult;
import com.arosbio.ml.gridsearch.GridSearchResult;
import com.arosbio.ml.gridsearch.utils.GSResComparator;
import com.arosbio.ml.interfaces.Predictor;
import com.arosbio.ml.metrics.Metric;
import com.arosbio.ml.metrics.MetricFactory;
import com.arosbio.ml.metrics.SingleValuedMetric;
import com.arosbio.ml.metrics.classification.BrierScore;
import com.arosbio.ml.metrics.classification.LabelDependent;
import com.arosbio.ml.metrics.classification.LogLoss;
import com.arosbio.ml.metrics.classification.ROC_AUC;
import com.arosbio.ml.metrics.cp.CPMetric;
import com.arosbio.ml.metrics.cp.classification.AverageC;
import com.arosbio.ml.metrics.cp.classification.ObservedFuzziness;
import com.arosbio.ml.metrics.cp.classification.ProportionMultiLabelPredictionSets;
import com.arosbio.ml.metrics.cp.classification.ProportionSingleLabelPredictionSets;
import com.arosbio.ml.metrics.cp.regression.MeanPredictionIntervalWidth;
import com.arosbio.ml.metrics.cp.regression.MedianPredictionIntervalWidth;
import com.arosbio.ml.metrics.plots.PlotMetric;
import com.arosbio.ml.metrics.regression.RMSE;
import com.arosbio.ml.testing.KFoldCV;
import com.arosbio.ml.testing.TestingStrategy;
import com.arosbio.ml.testing.utils.EvaluationUtils;
import com.arosbio.ml.vap.avap.AVAPClassifier;

/**
 * {@code tune} (alias {@code gridsearch}): an exhaustive grid search of hyper-parameters with
 * the library's {@link GridSearch} (cross-validation, default 10-fold), with CPSign 2's option
 * names, grid syntax, default optimisation metrics and JSON result layout.
 */
final class Tune {

    private static final PrintStream OUT = System.out;
    private static final PrintStream ERR = System.err;

    /** Rounding of results and metrics, as CPSign's tune output. */
    private static final int SIGNIFICANT_DIGITS = 3;

    private Tune() {
    }

    static int run(String cmd, List<String> args, Long seedOpt) throws Exception {
        Options o = new Options(cmd)
                .option(Options.Arity.ONE, "--data-set", "-ds")
                .option(Options.Arity.ONE, "--predictor-type", "-pt", "--ptype")
                .option(Options.Arity.ONE, "--scorer", "-sc")
                .option(Options.Arity.ONE, "--ncm", "--nonconf-measure")
                .option(Options.Arity.ONE, "--sampling-strategy", "-ss")
                .option(Options.Arity.MANY, "--grid", "-g")
                .option(Options.Arity.ONE, "--cv-folds", "-k", "--test-strategy")
                .option(Options.Arity.ONE, "--confidence", "-co")
                .option(Options.Arity.ONE, "--tolerance")
                .option(Options.Arity.ONE, "--opt-metric", "-op")
                .option(Options.Arity.ONE, "--num-results")
                .option(Options.Arity.ONE, "--result-format", "-rf")
                .option(Options.Arity.ONE, "--result-output", "-ro")
                .parse(args);

        Path dataPath = Paths.get(o.require("--data-set"));
        PredictorType ptype;
        try {
            ptype = PredictorType.getPredictorType(o.has("--predictor-type") ? o.get("--predictor-type").trim() : "1");
        } catch (IllegalArgumentException e) {
            throw new Options.UsageError("Invalid --predictor-type '" + o.get("--predictor-type") + "': " + e.getMessage());
        }
        double confidence = fraction(o.has("--confidence") ? o.get("--confidence") : "0.8", "--confidence");
        double tolerance = fraction(o.has("--tolerance") ? o.get("--tolerance") : "0.1", "--tolerance"); // CLI default
        int numResults = o.has("--num-results") ? (int) StageCli.parseLong(o.get("--num-results"), "--num-results") : 5;
        String format = o.has("--result-format") ? o.get("--result-format").trim().toLowerCase(Locale.ROOT) : "text";
        if (!format.equals("json") && !format.equals("text")) {
            throw new Options.UsageError("Result format '" + o.get("--result-format")
                    + "' is not supported by cpsign-stage (json or text)");
        }
        File resultFile = o.has("--result-output") ? StageCli.outputFile(o.get("--result-output")) : null;
        Map<String, String> rawGrid = gridArguments(o.list("--grid"));
        if (rawGrid.isEmpty()) {
            throw new Options.UsageError("Missing required option: '--grid=<KEY=VALUES>'");
        }
        long seed = seedOpt != null ? seedOpt : GlobalConfig.getInstance().getRNGSeed();
        GlobalConfig.getInstance().setRNGSeed(seed);
        TestingStrategy testing = testingStrategy(o.has("--cv-folds") ? o.get("--cv-folds") : "10");
        testing.setSeed(seed);

        ChemDataset data = StageCli.loadPrecomputed(dataPath, ptype);
        ChemPredictor chem = StageCli.buildPredictor(ptype,
                StageCli.scorer(o.get("--scorer"), ptype),
                StageCli.samplingStrategy(o.get("--sampling-strategy")),
                o.has("--ncm") ? StageCli.loadConfigured(NCM.class, o.get("--ncm"), "NCM") : null,
                seed);
        chem.setDataset(data);
        Predictor predictor = chem.getPredictor();

        Metric metric = optimizationMetric(o.has("--opt-metric") ? o.get("--opt-metric").trim() : "1", predictor,
                confidence);
        if (chem instanceof ChemClassifier && metric instanceof LabelDependent) {
            MetricFactory.setClassificationLabels(((ChemClassifier) chem).getNamedLabels(), metric);
        }
        Map<String, List<?>> grid = parameterGrid(predictor, rawGrid);
        int numPoints = 1;
        for (List<?> values : grid.values()) {
            numPoints *= values.size();
        }

        GridSearch.Builder builder = new GridSearch.Builder()
                .confidence(confidence)
                .tolerance(tolerance)
                .evaluationMetric(metric)
                .testStrategy(testing)
                .maxNumResults(numResults);
        final int total = numPoints;
        final int every = Math.max(1, (int) Math.ceil(total / 10.0));
        builder.register((GridSearch.ProgressCallback) info -> {
            if (info.getNumProcessedGridPoints() % every == 0 || info.getNumProcessedGridPoints() == total) {
                OUT.printf(" - Finished %d/%d grid points%n", info.getNumProcessedGridPoints(), total);
            }
        });
        GridSearch search = builder.build();

        OUT.printf("Running tune grid search of %d parameter combination(s) %s using %s, optimizing %s...%n",
                numPoints, grid, describe(testing), metric.getName());
        long start = System.nanoTime();
        GridSearchResult result;
        try {
            result = search.search(data, predictor, grid);
        } catch (IllegalArgumentException e) {
            throw new StageCli.StageError("Failed grid search: " + e.getMessage(), e);
        }
        double seconds = (System.nanoTime() - start) / 1e9;

        // The library (2.0.0) may skip its final sort and truncation, report "no parameter
        // combinations produced valid models" while some were valid, and leave the predictor
        // with the last grid point's parameters. Its list still holds the top results, so sort
        // and truncate them here (with its own comparator) and compute the warning ourselves.
        List<GSResult> results = new ArrayList<>(result.getBestParameters());
        results.sort(new GSResComparator(predictor));
        if (numResults > 0 && results.size() > numResults) {
            results.subList(numResults, results.size()).clear();
        }
        boolean valid = results.get(0).getStatus() == EvalStatus.VALID;
        String warning = valid ? borderWarning(results.get(0).getParams(), grid) : result.getWarning();
        if (valid) {
            predictor.setConfigParameters(results.get(0).getParams());
        }

        if (!valid) {
            Set<String> messages = new LinkedHashSet<>();
            for (GSResult r : results) {
                if (r.getErrorMessage() != null && !r.getErrorMessage().isEmpty() && !r.getErrorMessage().equals("-")) {
                    messages.add(r.getErrorMessage());
                }
            }
            throw new StageCli.StageError("Found no valid parameter combinations - all models were invalid or failed"
                    + " during training/evaluation" + (messages.isEmpty() ? "" : ": " + String.join("; ", messages)));
        }

        List<Map<String, Object>> ranked = rankedResults(results);
        GSResult best = results.get(0);
        OUT.printf("Finished grid search in %.1f s. Best parameters (%s = %s):%n", seconds, metric.getName(),
                round(best.getResult()));
        for (Map.Entry<String, Object> p : best.getParams().entrySet()) {
            OUT.printf(" - %s : %s%n", p.getKey(), p.getValue());
        }
        if (warning != null) {
            ERR.println(warning);
        }

        String text;
        if (format.equals("json")) {
            Map<String, Object> top = new LinkedHashMap<>();
            if (usesConfidence(result.getOptimizationType(), results)) {
                top.put("chosenConfidence", confidence);
            }
            top.put("optimizationMetric", result.getOptimizationType().getName());
            if (warning != null) {
                top.put("warning", warning);
            }
            StringBuilder sb = new StringBuilder(Json.write(top));
            sb.setLength(sb.length() - 1); // reopen the object: one result per line
            sb.append(top.isEmpty() ? "" : ",").append("\"results\":[");
            for (int i = 0; i < ranked.size(); i++) {
                sb.append(i == 0 ? "" : ",").append(System.lineSeparator()).append(Json.write(ranked.get(i)));
            }
            sb.append(System.lineSeparator()).append("]}").append(System.lineSeparator());
            text = sb.toString();
        } else {
            text = asText(result.getOptimizationType().getName(), ranked);
        }
        if (resultFile != null) {
            try (Writer w = Files.newBufferedWriter(resultFile.toPath(), StandardCharsets.UTF_8)) {
                w.write(text);
            }
            OUT.println("Wrote results to file: " + resultFile);
        } else {
            OUT.println();
            OUT.print(text);
        }
        return StageCli.EXIT_OK;
    }

    static double fraction(String text, String flag) {
        try {
            double v = Double.parseDouble(text.trim());
            if (v >= 0 && v <= 1) {
                return v;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new Options.UsageError("Invalid value for " + flag + ": '" + text + "' (a number in [0..1])");
    }

    /** {@code k-fold:k=5}, {@code KFoldCV:numSplits=5}, {@code LOOCV}, {@code RandomSplit} or a bare number k. */
    static TestingStrategy testingStrategy(String spec) {
        String s = spec.trim();
        if (s.matches("\\d+")) {
            try {
                return new KFoldCV(Integer.parseInt(s));
            } catch (IllegalArgumentException e) {
                throw new Options.UsageError("Invalid --cv-folds '" + spec + "': " + e.getMessage());
            }
        }
        try {
            return StageCli.loadConfigured(TestingStrategy.class, s, "testing strategy");
        } catch (StageCli.StageError e) {
            throw new Options.UsageError(e.getMessage());
        }
    }

    static String describe(TestingStrategy t) {
        if (t instanceof KFoldCV) {
            return ((KFoldCV) t).getNumFolds() + "-fold cross-validation";
        }
        return t.toString();
    }

    /** CPSign's --opt-metric: 1..4 per predictor kind (1 is the default), or a metric name. */
    static Metric optimizationMetric(String spec, Predictor predictor, double confidence) {
        List<Double> conf = Arrays.asList(confidence);
        Metric m = null;
        if (spec.matches("\\d+")) {
            int id = Integer.parseInt(spec);
            if (predictor instanceof ACPRegressor) {
                m = id == 1 ? new MedianPredictionIntervalWidth(conf)
                        : id == 2 ? new MeanPredictionIntervalWidth(conf) : id == 3 ? new RMSE() : null;
            } else if (predictor instanceof ConformalClassifier) {
                m = id == 1 ? new ProportionSingleLabelPredictionSets(conf)
                        : id == 2 ? new ProportionMultiLabelPredictionSets(conf)
                        : id == 3 ? new ObservedFuzziness() : id == 4 ? new AverageC() : null;
            } else if (predictor instanceof AVAPClassifier) {
                m = id == 1 ? new LogLoss() : id == 2 ? new BrierScore() : id == 3 ? new ROC_AUC() : null;
            }
            if (m == null) {
                throw new Options.UsageError("Invalid --opt-metric '" + spec + "' for " + predictor.getPredictorType());
            }
        } else {
            try {
                m = com.arosbio.commons.FuzzyServiceLoader.load(Metric.class, spec);
            } catch (IllegalArgumentException e) {
                throw new Options.UsageError("Invalid --opt-metric '" + spec + "': " + e.getMessage());
            }
        }
        if (!EvaluationUtils.validateMetrics(predictor, m)) {
            throw new Options.UsageError("Optimization metric '" + m.getName() + "' not allowed for "
                    + predictor.getPredictorType());
        }
        return m;
    }

    /**
     * The --grid values as KEY -> VALUES (in order, a repeated key keeps the last). A token
     * without '=' continues the previous key's values (as in "-g gamma=0.001, 0.01").
     */
    static Map<String, String> gridArguments(List<String> tokens) {
        Map<String, String> out = new LinkedHashMap<>();
        String last = null;
        for (String t : tokens) {
            int eq = t.indexOf('=');
            if (eq > 0) {
                last = t.substring(0, eq).trim();
                out.remove(last);
                out.put(last, t.substring(eq + 1).trim());
            } else if (last != null) {
                out.put(last, out.get(last) + "," + t.trim());
            } else {
                throw new Options.UsageError("Invalid --grid value '" + t + "' (use --grid KEY=VALUES)");
            }
        }
        return out;
    }

    /**
     * Match the given keys (case-insensitively, any alias) to the predictor's parameters and
     * convert their values; keys the predictor does not have are reported and skipped, as CPSign.
     */
    static Map<String, List<?>> parameterGrid(Predictor predictor, Map<String, String> raw) {
        List<ConfigParameter> known = predictor.getConfigParameters();
        Map<String, List<?>> grid = new LinkedHashMap<>();
        List<String> unused = new ArrayList<>();
        for (Map.Entry<String, String> kv : raw.entrySet()) {
            ConfigParameter match = null;
            for (ConfigParameter p : known) {
                if (CollectionUtils.containsIgnoreCase(p.getNames(), kv.getKey())) {
                    match = p;
                    break;
                }
            }
            if (match == null) {
                unused.add(kv.getKey());
                continue;
            }
            try {
                grid.put(match.getNames().get(0), values(kv.getValue(), match));
            } catch (IllegalArgumentException e) {
                throw new Options.UsageError("Grid values for parameter '" + kv.getKey() + "' could not be converted: "
                        + e.getMessage());
            }
        }
        if (!unused.isEmpty()) {
            ERR.println("Unused parameter(s) in the evaluation grid: " + String.join(", ", unused));
        }
        if (grid.isEmpty()) {
            List<String> names = new ArrayList<>();
            for (ConfigParameter p : known) {
                names.add(p.getNames().get(0));
            }
            throw new Options.UsageError("No parameters to tune for " + predictor.getPredictorType()
                    + " (tunable: " + String.join(", ", names) + ")");
        }
        return grid;
    }

    static List<?> values(String text, ConfigParameter p) {
        List<String> items = new ArrayList<>();
        for (String s : text.split("[\\s,]+")) {
            if (!s.isEmpty()) {
                items.add(s);
            }
        }
        if (items.isEmpty()) {
            throw new IllegalArgumentException("no values given");
        }
        // the type's name, as the library may wrap the parameter (DescribedConfig)
        String type = p.getType() == null ? "" : p.getType().toLowerCase(Locale.ROOT);
        boolean integer = p instanceof IntegerConfig || type.equals("integer");
        boolean numeric = p instanceof NumericConfig || type.equals("number");
        if (numeric || integer) {
            Set<Double> numbers = new LinkedHashSet<>();
            for (String s : items) {
                numbers.addAll(numbers(s));
            }
            if (!integer) {
                return new ArrayList<>(numbers);
            }
            Set<Integer> ints = new LinkedHashSet<>();
            for (double d : numbers) {
                if (d != Math.rint(d)) {
                    throw new IllegalArgumentException("'" + text + "' gives the non-integer value " + d);
                }
                ints.add((int) d);
            }
            return new ArrayList<>(ints);
        }
        if (p instanceof BooleanConfig || type.equals("boolean")) {
            List<Boolean> out = new ArrayList<>();
            for (String s : items) {
                if (!s.equalsIgnoreCase("true") && !s.equalsIgnoreCase("false")) {
                    throw new IllegalArgumentException("'" + s + "' is not true/false");
                }
                out.add(Boolean.parseBoolean(s));
            }
            return out;
        }
        return items; // enum, implementation and text parameters: set by name
    }

    /**
     * A number, or a range {@code start:stop[:step]} (inclusive stop, step 1 by default; a single
     * number before/after a colon means 0:stop) with an optional base part {@code b=B},
     * {@code bB} or {@code base=B} anywhere, giving B^x for each x of the range.
     */
    static List<Double> numbers(String s) {
        if (!s.contains(":")) {
            try {
                return Arrays.asList(Double.parseDouble(s));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + s + "' is not a number");
            }
        }
        String[] parts = s.split(":", -1);
        if (parts.length > 4) {
            throw new IllegalArgumentException("'" + s + "' is not a range (start:stop[:step][:b=base])");
        }
        Double base = null;
        List<Double> ses = new ArrayList<>();
        for (String part : parts) {
            String t = part.trim().toLowerCase(Locale.ROOT);
            if (t.startsWith("b")) {
                if (base != null) {
                    throw new IllegalArgumentException("'" + s + "' has more than one base");
                }
                t = t.startsWith("base") ? t.substring(4) : t.substring(1);
                if (t.startsWith("=")) {
                    t = t.substring(1);
                }
                try {
                    base = Double.parseDouble(t);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("invalid base in '" + s + "'");
                }
            } else {
                try {
                    ses.add(Double.parseDouble(t));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("invalid number '" + part + "' in range '" + s + "'");
                }
            }
        }
        double start, stop, step;
        if (ses.size() == 1) {
            start = 0;
            stop = ses.get(0);
            step = 1;
        } else if (ses.size() == 2) {
            start = ses.get(0);
            stop = ses.get(1);
            step = 1;
        } else if (ses.size() == 3) {
            start = ses.get(0);
            stop = ses.get(1);
            step = ses.get(2);
        } else {
            throw new IllegalArgumentException("'" + s + "' is not a range (start:stop[:step][:b=base])");
        }
        List<Double> range = base == null ? CollectionUtils.listRange(start, stop, step)
                : CollectionUtils.listRange(start, stop, step, base);
        return new ArrayList<>(new LinkedHashSet<>(range));
    }

    /** CPSign's warning when a numeric parameter's best value is the lowest or highest of 3 or more. */
    static String borderWarning(Map<String, Object> best, Map<String, List<?>> grid) {
        List<String> affected = new ArrayList<>();
        for (Map.Entry<String, Object> e : best.entrySet()) {
            List<?> values = grid.get(e.getKey());
            if (values == null || values.size() < 3 || !(e.getValue() instanceof Number)) {
                continue;
            }
            double v = ((Number) e.getValue()).doubleValue();
            double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
            for (Object x : values) {
                if (x instanceof Number) {
                    min = Math.min(min, ((Number) x).doubleValue());
                    max = Math.max(max, ((Number) x).doubleValue());
                }
            }
            if (v == min || v == max) {
                affected.add(e.getKey());
            }
        }
        return affected.isEmpty() ? null
                : "WARNING: Optimal parameters found at border of the grid, true optimal parameters might be outside"
                        + " the search grid. Parameters affected: " + String.join(", ", affected);
    }

    static boolean usesConfidence(Metric optimization, List<GSResult> results) {
        if (optimization instanceof CPMetric) {
            return true;
        }
        List<Metric> secondary = results.get(0).getSecondaryMetrics();
        if (secondary != null) {
            for (Metric m : secondary) {
                if (m instanceof CPMetric) {
                    return true;
                }
            }
        }
        return false;
    }

    static Object round(double v) {
        return Double.isFinite(v) ? MathUtils.roundToNSignificantFigures(v, SIGNIFICANT_DIGITS) : v;
    }

    /** The metric's values (a plot metric: its value at the single evaluated confidence). */
    static Map<String, Object> scores(Metric m) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (m instanceof PlotMetric) {
            Map<String, List<Number>> curves = ((PlotMetric) m).buildPlot().getCurves();
            for (String label : ((PlotMetric) m).getYLabels()) {
                List<Number> c = curves.get(label);
                if (c != null && !c.isEmpty()) {
                    out.put(label, c.get(0) == null ? null : round(c.get(0).doubleValue()));
                }
            }
        } else if (m instanceof SingleValuedMetric) {
            for (Map.Entry<String, ?> e : ((SingleValuedMetric) m).asMap().entrySet()) {
                Object v = e.getValue();
                out.put(e.getKey(), v instanceof Double || v instanceof Float ? round(((Number) v).doubleValue()) : v);
            }
        }
        return out;
    }

    /**
     * Results best first, as CPSign's JSON: Rank (equal rounded results share a rank, NA for a
     * non-finite result), the result, params, metrics, status, runtime and any error comment.
     */
    static List<Map<String, Object>> rankedResults(List<GSResult> results) {
        List<Map<String, Object>> out = new ArrayList<>();
        int rank = 0;
        Object last = null;
        for (GSResult r : results) {
            Map<String, Object> m = new LinkedHashMap<>();
            Object value = round(r.getResult());
            boolean finite = Double.isFinite(r.getResult()) && r.getStatus() != EvalStatus.FAILED;
            if (finite && (last == null || !last.equals(value))) {
                rank++;
                last = value;
            }
            m.put("Rank", finite ? (Object) rank : "NA");
            m.put("result", value);
            m.put("params", new LinkedHashMap<>(r.getParams()));
            Map<String, Object> metrics = new LinkedHashMap<>(scores(r.getOptimizationMetric()));
            if (r.getSecondaryMetrics() != null) {
                for (Metric s : r.getSecondaryMetrics()) {
                    metrics.putAll(scores(s));
                }
            }
            m.put("metrics", metrics);
            m.put("status", r.getStatus().toString());
            m.put("runtime(milliseconds)", r.getRuntime());
            String err = r.getErrorMessage();
            if (err != null && !err.isEmpty() && !err.equals("-")) {
                m.put("comment", err);
            }
            out.add(m);
        }
        return out;
    }

    static String asText(String metricName, List<Map<String, Object>> ranked) {
        StringBuilder sb = new StringBuilder();
        String head = "Optimal parameters found by tune using " + metricName + " as optimization metric:";
        sb.append(head).append(System.lineSeparator());
        sb.append("-".repeat(head.length())).append(System.lineSeparator());
        for (Map<String, Object> r : ranked) {
            sb.append(String.format(" - %-40s : %s%n", "Rank", r.get("Rank")));
            for (Map.Entry<?, ?> p : ((Map<?, ?>) r.get("params")).entrySet()) {
                sb.append(String.format(" - %-40s : %s%n", "Param " + p.getKey(), p.getValue()));
            }
            for (Map.Entry<?, ?> p : ((Map<?, ?>) r.get("metrics")).entrySet()) {
                sb.append(String.format(" - %-40s : %s%n", p.getKey(), p.getValue()));
            }
            sb.append(String.format(" - %-40s : %s%n", "Status", r.get("status")));
            sb.append(String.format(" - %-40s : %s ms%n", "Runtime", r.get("runtime(milliseconds)")));
            if (r.containsKey("comment")) {
                sb.append(String.format(" - %-40s : %s%n", "Comment", r.get("comment")));
            }
            sb.append(System.lineSeparator());
        }
        return sb.toString();
    }
}
