package org.cpsignairflow;

import java.io.BufferedWriter;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;

import org.openscience.cdk.interfaces.IAtomContainer;

import com.arosbio.chem.io.in.CSVFile;
import com.arosbio.chem.io.in.ChemFileIterator;
import com.arosbio.chem.io.in.FailedRecord;
import com.arosbio.chem.io.in.ProgressTracker;
import com.arosbio.cheminf.ChemCPClassifier;
import com.arosbio.cheminf.ChemCPRegressor;
import com.arosbio.cheminf.ChemClassifier;
import com.arosbio.cheminf.ChemPredictor;
import com.arosbio.cheminf.ChemVAPClassifier;
import com.arosbio.cheminf.data.ChemDataset;
import com.arosbio.cheminf.data.ChemDataset.DescriptorCalcInfo;
import com.arosbio.cheminf.descriptors.ChemDescriptor;
import com.arosbio.cheminf.filter.HACFilter;
import com.arosbio.cheminf.io.ModelSerializer;
import com.arosbio.commons.FuzzyServiceLoader;
import com.arosbio.commons.GlobalConfig;
import com.arosbio.commons.GlobalConfig.Defaults.PredictorType;
import com.arosbio.commons.MathUtils;
import com.arosbio.commons.config.Configurable;
import com.arosbio.commons.config.Configurable.ConfigParameter;
import com.arosbio.data.Dataset.RecordType;
import com.arosbio.data.NamedLabels;
import com.arosbio.ml.algorithms.Classifier;
import com.arosbio.ml.algorithms.MLAlgorithm;
import com.arosbio.ml.algorithms.PseudoProbabilisticClassifier;
import com.arosbio.ml.algorithms.Regressor;
import com.arosbio.ml.algorithms.ScoringClassifier;
import com.arosbio.ml.algorithms.svm.LinearSVC;
import com.arosbio.ml.algorithms.svm.LinearSVR;
import com.arosbio.ml.algorithms.svm.SVC;
import com.arosbio.ml.cp.CPRegressionPrediction;
import com.arosbio.ml.cp.CPRegressionPrediction.PredictedInterval;
import com.arosbio.ml.cp.acp.ACPClassifier;
import com.arosbio.ml.cp.acp.ACPRegressor;
import com.arosbio.ml.cp.icp.ICPClassifier;
import com.arosbio.ml.cp.icp.ICPRegressor;
import com.arosbio.ml.cp.nonconf.NCM;
import com.arosbio.ml.cp.nonconf.calc.SmoothedPValue;
import com.arosbio.ml.cp.nonconf.classification.InverseProbabilityNCM;
import com.arosbio.ml.cp.nonconf.classification.NCMMondrianClassification;
import com.arosbio.ml.cp.nonconf.classification.NegativeDistanceToHyperplaneNCM;
import com.arosbio.ml.cp.nonconf.regression.LogNormalizedNCM;
import com.arosbio.ml.cp.nonconf.regression.NCMRegression;
import com.arosbio.ml.cp.tcp.TCPClassifier;
import com.arosbio.ml.interfaces.AggregatedPredictor;
import com.arosbio.ml.interfaces.Predictor;
import com.arosbio.ml.io.ModelIO;
import com.arosbio.ml.io.ModelInfo;
import com.arosbio.ml.sampling.RandomSampling;
import com.arosbio.ml.sampling.SamplingStrategy;
import com.arosbio.ml.vap.avap.AVAPClassifier;
import com.arosbio.ml.vap.avap.CVAPPrediction;
import com.arosbio.ml.vap.ivap.IVAPClassifier;

/**
 * cpsign-stage: a small command line program over the CPSign library (com.arosbio:cpsign-api)
 * that implements the subset of the CPSign 2 CLI that cpsign-airflow's pipeline stages use:
 * precompute, train, fast-aggregate (alias aggregate), predict and tune (alias gridsearch), with CPSign's option names,
 * CPSign's model/data-set jar format (written by the library's serializer) and CPSign's JSON
 * prediction layout. See README.md next to install.sh.
 */
public final class StageCli {

    static final String PROGRAM = "cpsign";
    static final String STAGE_VERSION = "1.0.0";

    /** Exit codes as CPSign's: 0 success, 1 user/argument error, 4 program error. */
    static final int EXIT_OK = 0;
    static final int EXIT_USER = 1;
    static final int EXIT_PROGRAM = 4;

    private static final PrintStream OUT = System.out;
    private static final PrintStream ERR = System.err;

    private StageCli() {
    }

    public static void main(String[] argv) {
        // The library's own logback.xml has no appender but root level DEBUG: use ours instead.
        if (System.getProperty("logback.configurationFile") == null
                && StageCli.class.getClassLoader().getResource("org/cpsignairflow/logback.xml") != null) {
            System.setProperty("logback.configurationFile", "org/cpsignairflow/logback.xml");
        }
        int code;
        try {
            code = run(Arrays.asList(argv));
        } catch (Options.UsageError e) {
            ERR.println("Error: " + e.getMessage());
            code = EXIT_USER;
        } catch (StageError e) {
            ERR.println("Error: " + e.getMessage());
            code = EXIT_USER;
        } catch (Exception | Error e) {
            ERR.println("Error: internal failure: " + e);
            e.printStackTrace(ERR);
            code = EXIT_PROGRAM;
        }
        OUT.flush();
        System.exit(code);
    }

    /** A user-facing failure (bad input, incompatible model ...): message, exit code 1. */
    static final class StageError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        StageError(String message) {
            super(message);
        }

        StageError(String message, Throwable cause) {
            super(message, cause);
        }
    }

    static int run(List<String> raw) throws Exception {
        List<String> args = ArgFiles.expand(raw);
        // options accepted anywhere (as CPSign's top-level ones) and then dropped
        List<String> rest = new ArrayList<>();
        Long seed = null;
        boolean version = false;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            switch (a) {
                case "--no-logfile":
                case "--time":
                case "--no-ansi":
                case "--ansi-off":
                case "-q":
                case "--quiet":
                case "--silent":
                    break;
                case "-V":
                case "--version":
                    version = true;
                    break;
                case "--seed":
                    if (i + 1 >= args.size()) {
                        throw new Options.UsageError("Missing value for option --seed");
                    }
                    seed = parseLong(args.get(++i), "--seed");
                    break;
                case "--logfile":
                    i++; // a log file is never written; the path is ignored
                    break;
                default:
                    if (a.startsWith("--seed=")) {
                        seed = parseLong(a.substring(7), "--seed");
                    } else if (a.startsWith("--logfile=")) {
                        break;
                    } else {
                        rest.add(a);
                    }
            }
        }
        if (version) {
            printVersion();
            return EXIT_OK;
        }
        if (rest.isEmpty()) {
            usage(OUT);
            return EXIT_OK;
        }
        if (seed != null) {
            GlobalConfig.getInstance().setRNGSeed(seed);
        }
        String cmd = rest.get(0);
        List<String> cmdArgs = rest.subList(1, rest.size());
        switch (cmd) {
            case "precompute":
                return precompute(cmdArgs);
            case "train":
                return train(cmdArgs, seed);
            case "fast-aggregate":
            case "aggregate":
                return aggregate(cmd, cmdArgs);
            case "predict":
                return predict(cmdArgs);
            case "tune":
            case "gridsearch":
                return Tune.run(cmd, cmdArgs, seed);
            case "help":
            case "-h":
            case "--help":
                usage(OUT);
                return EXIT_OK;
            default:
                usage(ERR);
                throw new Options.UsageError("Unknown command: '" + cmd + "'");
        }
    }

    // ------------------------------------------------------------------ version / usage

    static String apiVersion() {
        String[] resources = {
            "META-INF/maven/com.arosbio/cpsign-api/pom.properties",
        };
        for (String r : resources) {
            try (InputStream in = ChemDataset.class.getClassLoader().getResourceAsStream(r)) {
                if (in != null) {
                    Properties p = new Properties();
                    p.load(in);
                    String v = p.getProperty("version");
                    if (v != null) {
                        return v;
                    }
                }
            } catch (IOException e) {
                // fall through
            }
        }
        String v = ChemDataset.class.getPackage().getImplementationVersion();
        return v != null ? v : "unknown";
    }

    static void printVersion() {
        OUT.println("cpsign-stage " + STAGE_VERSION + " (CPSign CLI subset) on cpsign-api " + apiVersion());
        OUT.println("Version: " + apiVersion());
    }

    static void usage(PrintStream out) {
        out.println("Usage: " + PROGRAM + " [--version] <command> [options | @argument-file]");
        out.println("cpsign-stage " + STAGE_VERSION + ": a subset of the CPSign 2 CLI on cpsign-api " + apiVersion());
        out.println("Commands:");
        out.println("  precompute      --model-type regression|classification --train-data TSV <path>");
        out.println("                  --property <col> [--labels a b] [--descriptors signatures:startHeight=1:endHeight=3]");
        out.println("                  [--model-name <n>] --model-out <file>");
        out.println("  train           --data-set <pre.jar> --predictor-type 1|2|3|5 [--scorer Alg:key=value]");
        out.println("                  [--ncm <NCM>] [--sampling-strategy random:numSamples=5] [--splits 1,2]");
        out.println("                  [--seed N] [--model-name <n>] --model-out <file>");
        out.println("  fast-aggregate  --model-files <file|glob|dir>... --model-out <file>   (alias: aggregate)");
        out.println("  predict         --model <jar> --predict-file TSV <path> [--confidences 0.8,0.9]");
        out.println("                  [--output-format json] [--output <file>]");
        out.println("  tune            --data-set <pre.jar> --predictor-type 1|2|3|5 [--scorer Alg:key=value] [--ncm <NCM>]");
        out.println("                  [--sampling-strategy random:numSamples=5] --grid KEY=VALUES [--grid ...]");
        out.println("                  [--cv-folds k-fold:k=10] [--confidence 0.8] [--tolerance 0.1] [--opt-metric 1]");
        out.println("                  [--num-results 5] [--result-format json|text] [--result-output <file>]");
        out.println("                  [--seed N]   (alias: gridsearch)");
        out.println("Accepted and ignored: --no-logfile, --logfile <f>, --time, --quiet.");
    }

    // ------------------------------------------------------------------ helpers

    static long parseLong(String s, String flag) {
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            throw new Options.UsageError("Invalid value for " + flag + ": '" + s + "'");
        }
    }

    static File outputFile(String path) throws IOException {
        File f = new File(path).getAbsoluteFile();
        File parent = f.getParentFile();
        if (parent != null) {
            Files.createDirectories(parent.toPath());
        }
        if (f.isDirectory()) {
            throw new StageError("Output is a directory: " + f);
        }
        return f;
    }

    static String stem(String path) {
        String name = Paths.get(path).getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot > 0 ? name.substring(0, dot) : name;
    }

    /**
     * Load an implementation by CPSign's "Name:key=value:key=value" syntax (a positional value
     * before any key=value sets the parameters in their declared order, as in CPSign).
     */
    static <T> T loadConfigured(Class<T> service, String text, String what) {
        String[] parts = text.split(":");
        T impl;
        try {
            String name = parts[0].trim();
            if (name.matches("\\d+")) {
                impl = FuzzyServiceLoader.load(service, Integer.parseInt(name));
            } else {
                impl = FuzzyServiceLoader.load(service, name);
            }
        } catch (IllegalArgumentException e) {
            throw new StageError("Invalid " + what + " '" + text + "': " + e.getMessage());
        }
        if (parts.length > 1) {
            if (!(impl instanceof Configurable)) {
                throw new StageError(what + " '" + parts[0] + "' takes no sub-parameters");
            }
            configure((Configurable) impl, Arrays.asList(parts).subList(1, parts.length), text, what);
        }
        return impl;
    }

    static void configure(Configurable obj, List<String> params, String text, String what) {
        List<ConfigParameter> known = obj.getConfigParameters();
        Map<String, Object> config = new LinkedHashMap<>();
        boolean named = false;
        for (int i = 0; i < params.size(); i++) {
            String p = params.get(i);
            int eq = p.indexOf('=');
            if (eq < 0) {
                if (named || known == null || i >= known.size()) {
                    throw new StageError("Invalid sub-parameter '" + p + "' in " + what + " '" + text + "'");
                }
                config.put(known.get(i).getNames().get(0), p);
                continue;
            }
            named = true;
            String key = p.substring(0, eq).trim();
            String value = p.substring(eq + 1).trim();
            ConfigParameter match = null;
            if (known != null) {
                for (ConfigParameter c : known) {
                    for (String n : c.getNames()) {
                        if (n.equalsIgnoreCase(key)) {
                            match = c;
                        }
                    }
                }
            }
            if (match == null) {
                throw new StageError("Invalid sub-parameter '" + key + "' in " + what + " '" + text + "'");
            }
            config.put(match.getNames().get(0), value);
        }
        try {
            obj.setConfigParameters(config);
        } catch (RuntimeException e) {
            throw new StageError("Invalid sub-parameter for " + what + " '" + text + "': " + e.getMessage());
        }
    }

    /** {@code FORMAT[:k=v...] [k=v ...] PATH} as CPSign's --train-data / --predict-file. */
    static CSVFile chemFile(List<String> tokens, String flag) {
        if (tokens.size() < 2) {
            throw new Options.UsageError(flag + " needs the file format and a path, e.g. " + flag + " TSV data.tsv");
        }
        String[] head = tokens.get(0).split(":");
        String format = head[0].trim().toUpperCase(Locale.ROOT);
        char delimiter;
        if (format.equals("TSV")) {
            delimiter = '\t';
        } else if (format.equals("CSV")) {
            delimiter = ',';
        } else {
            throw new Options.UsageError(flag + ": unsupported format '" + head[0] + "' (cpsign-stage reads CSV and TSV)");
        }
        List<String> params = new ArrayList<>(Arrays.asList(head).subList(1, head.length));
        params.addAll(tokens.subList(1, tokens.size() - 1));
        Path path = Paths.get(tokens.get(tokens.size() - 1));
        if (!Files.isRegularFile(path)) {
            throw new StageError(flag + ": no such file: " + path);
        }
        CSVFile file = new CSVFile(path.toAbsolutePath().toUri()).setDelimiter(delimiter);
        if (!params.isEmpty()) {
            configure(file, params, String.join(" ", tokens), flag);
        }
        return file;
    }

    static String summarizeFailures(Collection<FailedRecord> failed) {
        int invalid = 0, property = 0, descriptor = 0, filter = 0, unknown = 0;
        for (FailedRecord r : new TreeSet<>(failed)) {
            switch (r.getCause()) {
                case INVALID_RECORD:
                case INVALID_STRUCTURE:
                case MISSING_STRUCTURE:
                    invalid++;
                    break;
                case INVALID_PROPERTY:
                case MISSING_PROPERTY:
                    property++;
                    break;
                case DESCRIPTOR_CALC_ERROR:
                    descriptor++;
                    break;
                case REMOVED_BY_FILTER:
                    filter++;
                    break;
                default:
                    unknown++;
            }
        }
        StringBuilder sb = new StringBuilder();
        if (invalid > 0) {
            sb.append(String.format(" - Failed %d record(s) due to being invalid%n", invalid));
        }
        if (property > 0) {
            sb.append(String.format(" - Failed %d record(s) due to missing/invalid endpoint activity%n", property));
        }
        if (descriptor > 0) {
            sb.append(String.format(" - Failed %d record(s) during descriptor calculation%n", descriptor));
        }
        if (filter > 0) {
            sb.append(String.format(" - Failed %d record(s) due to Chemical filters%n", filter));
        }
        if (unknown > 0) {
            sb.append(String.format(" - Failed %d record(s) due to unknown error%n", unknown));
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------ precompute

    static int precompute(List<String> args) throws Exception {
        Options o = new Options("precompute")
                .option(Options.Arity.ONE, "--model-type", "-mt")
                .option(Options.Arity.CHEM_FILE, "--train-data", "-td")
                .option(Options.Arity.ONE, "--property", "-pr")
                .option(Options.Arity.MANY, "--labels", "-l")
                .option(Options.Arity.MANY, "--descriptors", "-d")
                .option(Options.Arity.ONE, "--model-name", "-mn")
                .option(Options.Arity.ONE, "--model-out", "-mo")
                .parse(args);

        String type = o.has("--model-type") ? o.get("--model-type").trim().toLowerCase(Locale.ROOT) : "1";
        boolean classification;
        if (type.equals("1") || type.startsWith("class")) {
            classification = true;
        } else if (type.equals("2") || type.startsWith("reg")) {
            classification = false;
        } else {
            throw new Options.UsageError("Invalid --model-type '" + o.get("--model-type") + "' (classification|regression)");
        }
        if (!o.has("--train-data")) {
            throw new Options.UsageError("Missing required option: '--train-data'");
        }
        String property = o.require("--property");
        File out = outputFile(o.require("--model-out"));
        List<String> labels = o.splitList("--labels");
        if (classification && labels.size() < 2) {
            throw new Options.UsageError("Parameter --labels must be at least of length 2 (classification)");
        }
        if (!classification && !labels.isEmpty()) {
            throw new Options.UsageError("Parameter --labels cannot be given in regression mode");
        }
        CSVFile file = chemFile(o.list("--train-data"), "--train-data");

        ChemDataset data;
        if (o.has("--descriptors")) {
            List<ChemDescriptor> descriptors = new ArrayList<>();
            for (String d : o.list("--descriptors")) {
                descriptors.add(loadConfigured(ChemDescriptor.class, d, "descriptor"));
            }
            data = new ChemDataset(descriptors);
        } else {
            data = new ChemDataset(); // CPSign's default: the signatures descriptor, heights 1..3
        }
        data.withFilters(new HACFilter()); // CPSign's default --chem-filters HAC:min=5
        data.setProgressTracker(ProgressTracker.createNoEarlyStopping());
        data.initializeDescriptors();

        OUT.print("Reading train file and calculating descriptors... ");
        DescriptorCalcInfo info;
        try (ChemFileIterator mols = file.getIterator(data.getProgressTracker())) {
            info = classification
                    ? data.add(mols, property, new NamedLabels(labels), RecordType.NORMAL)
                    : data.add(mols, property, RecordType.NORMAL);
        } catch (IOException | IllegalArgumentException e) {
            OUT.println("[failed]");
            throw new StageError("Failed reading " + file.getURI() + ": " + e.getMessage(), e);
        }
        OUT.println("[done]");
        List<FailedRecord> failed = new ArrayList<>(info.getFailedRecords());
        StringBuilder parsed = new StringBuilder(String.format("Successfully parsed %d molecules.",
                info.getNumSuccessfullyAdded()));
        if (classification) {
            Map<Double, Integer> freq = data.getLabelFrequencies();
            List<String> counts = new ArrayList<>();
            for (Map.Entry<Integer, String> l : data.getTextualLabels().getLabels().entrySet()) {
                counts.add(String.format("'%s'=%d", l.getValue(), freq.getOrDefault((double) l.getKey(), 0)));
            }
            parsed.append(" Detected labels: ").append(String.join(", ", counts)).append('.');
        } else {
            parsed.append(String.format(" Generated %d new signatures.", data.getNumAttributes()));
        }
        OUT.println(parsed);
        OUT.print(summarizeFailures(failed));

        String name = o.has("--model-name") && !o.get("--model-name").isBlank() ? o.get("--model-name")
                : stem(Paths.get(file.getURI()).toString());
        OUT.print("Saving precomputed data set to file: " + out + " ... ");
        ModelSerializer.saveDataset(data, new ModelInfo(name), out, null);
        OUT.println("[done]");
        return EXIT_OK;
    }

    // ------------------------------------------------------------------ train

    static int train(List<String> args, Long seedOpt) throws Exception {
        Options o = new Options("train")
                .option(Options.Arity.ONE, "--data-set", "-ds")
                .option(Options.Arity.ONE, "--predictor-type", "-pt", "--ptype")
                .option(Options.Arity.ONE, "--scorer", "-sc")
                .option(Options.Arity.ONE, "--ncm", "--nonconf-measure")
                .option(Options.Arity.ONE, "--sampling-strategy", "-ss")
                .option(Options.Arity.MANY, "--splits")
                .option(Options.Arity.ONE, "--model-name", "-mn")
                .option(Options.Arity.ONE, "--model-out", "-mo")
                .parse(args);

        Path dataPath = Paths.get(o.require("--data-set"));
        File out = outputFile(o.require("--model-out"));
        PredictorType ptype;
        try {
            ptype = PredictorType.getPredictorType(o.has("--predictor-type") ? o.get("--predictor-type").trim() : "1");
        } catch (IllegalArgumentException e) {
            throw new Options.UsageError("Invalid --predictor-type '" + o.get("--predictor-type") + "': " + e.getMessage());
        }
        long seed = seedOpt != null ? seedOpt : GlobalConfig.getInstance().getRNGSeed();
        GlobalConfig.getInstance().setRNGSeed(seed);

        ChemDataset data = loadPrecomputed(dataPath, ptype);

        MLAlgorithm alg = scorer(o.get("--scorer"), ptype);
        SamplingStrategy strategy = samplingStrategy(o.get("--sampling-strategy"));
        NCM ncm = o.has("--ncm") ? loadConfigured(NCM.class, o.get("--ncm"), "NCM") : null;
        ChemPredictor chem = buildPredictor(ptype, alg, strategy, ncm, seed);
        Predictor predictor = chem.getPredictor();
        chem.setDataset(data);

        List<Integer> splits = parseSplits(o.splitList("--splits"));
        if (predictor instanceof AggregatedPredictor) {
            AggregatedPredictor agg = (AggregatedPredictor) predictor;
            int n = agg.getStrategy().getNumSamples();
            List<Integer> todo = new ArrayList<>();
            if (splits.isEmpty()) {
                for (int i = 1; i <= n; i++) {
                    todo.add(i);
                }
                OUT.printf("Training %s predictor with %d model(s):%n", ptype.getName(), n);
            } else {
                for (int s : splits) {
                    if (s < 1 || s > n) {
                        throw new StageError("Parameter --splits must be in the range [1.." + n + "] for each index");
                    }
                }
                todo.addAll(splits);
                OUT.printf("Training %s predictor with split(s) %s out of %d model(s):%n", ptype.getName(), splits, n);
            }
            for (int s : todo) {
                OUT.printf(" - Training model %d/%d... ", s, n);
                try {
                    agg.train(data, s - 1); // CPSign's splits are 1-based
                } catch (IllegalArgumentException e) {
                    throw new StageError("Failed training: " + e.getMessage(), e);
                }
                OUT.println("[done]");
            }
        } else {
            if (!splits.isEmpty()) {
                throw new StageError("Parameter --splits can only be given for an aggregated predictor type");
            }
            OUT.print("Setting up TCP Classification predictor... ");
            predictor.train(data);
            OUT.println("[done]");
        }

        String name = o.has("--model-name") && !o.get("--model-name").isBlank() ? o.get("--model-name")
                : stem(out.getPath());
        chem.withModelInfo(new ModelInfo(name));
        OUT.print("Saving model to file: " + out + " ... ");
        ModelSerializer.saveModel(chem, out, null);
        OUT.println("[done]");
        return EXIT_OK;
    }

    static ChemDataset loadPrecomputed(Path dataPath, PredictorType ptype) {
        if (!Files.isRegularFile(dataPath)) {
            throw new StageError("--data-set: no such file: " + dataPath);
        }
        OUT.println("Loading precomputed data set...");
        ChemDataset data;
        try {
            data = ModelSerializer.loadDataset(dataPath.toAbsolutePath().toUri(), null);
        } catch (Exception e) {
            throw new StageError("Failed loading precomputed data set " + dataPath + ": " + e.getMessage(), e);
        }
        boolean dataIsClassification = data.getTextualLabels() != null;
        OUT.printf("Loaded precomputed data set with %d records and %d features.%n",
                data.getNumRecords(), data.getNumAttributes());
        if (ptype.isClassification() != dataIsClassification) {
            throw new StageError("File sent to --data-set was not a precomputed "
                    + (ptype.isClassification() ? "classification" : "regression") + " data set");
        }
        return data;
    }

    /** --scorer, or CPSign's default (LinearSVC / LinearSVR). */
    static MLAlgorithm scorer(String spec, PredictorType ptype) {
        return spec != null ? loadConfigured(MLAlgorithm.class, spec, "scorer")
                : (ptype.isClassification() ? new LinearSVC() : new LinearSVR());
    }

    /** --sampling-strategy, or CPSign's default (random, 10 samples). */
    static SamplingStrategy samplingStrategy(String spec) {
        return spec != null ? loadConfigured(SamplingStrategy.class, spec, "sampling strategy") : new RandomSampling();
    }

    /** The (untrained) predictor for --predictor-type, wrapped as a ChemPredictor (no data set yet). */
    static ChemPredictor buildPredictor(PredictorType ptype, MLAlgorithm alg, SamplingStrategy strategy, NCM ncm,
            long seed) {
        SmoothedPValue pvalues = new SmoothedPValue(seed); // CPSign's default --pvalue-calc

        Predictor predictor;
        ChemPredictor chem;
        switch (ptype) {
            case ACP_CLASSIFICATION:
            case TCP_CLASSIFICATION: {
                NCMMondrianClassification cncm = classificationNCM(ncm, alg);
                if (ptype == PredictorType.TCP_CLASSIFICATION) {
                    TCPClassifier tcp = new TCPClassifier(cncm, seed);
                    tcp.setPValueCalculator(pvalues);
                    predictor = tcp;
                } else {
                    ICPClassifier icp = new ICPClassifier(cncm);
                    icp.setPValueCalculator(pvalues);
                    ACPClassifier acp = new ACPClassifier(icp, strategy);
                    acp.setSeed(seed);
                    predictor = acp;
                }
                chem = new ChemCPClassifier((com.arosbio.ml.cp.ConformalClassifier) predictor);
                break;
            }
            case ACP_REGRESSION: {
                if (!(alg instanceof Regressor)) {
                    throw new StageError("ML implementation must be of type Regressor for ACP Regression, got " + alg.getName());
                }
                NCMRegression rncm;
                if (ncm == null) {
                    rncm = new LogNormalizedNCM((Regressor) alg); // CPSign's default regression NCM
                } else if (ncm instanceof NCMRegression) {
                    rncm = (NCMRegression) ncm;
                    rncm.setModel((Regressor) alg);
                } else {
                    throw new StageError("NCM " + ncm.getName() + " not allowed for ACP Regression");
                }
                if (rncm.requiresErrorModel() && rncm.getErrorModel() == null) {
                    rncm.setErrorModel(alg.clone());
                }
                ICPRegressor icp = new ICPRegressor(rncm);
                icp.setPValueCalculator(pvalues);
                ACPRegressor acp = new ACPRegressor(icp, strategy);
                acp.setSeed(seed);
                predictor = acp;
                chem = new ChemCPRegressor(acp);
                break;
            }
            case VAP_CLASSIFICATION: {
                if (!(alg instanceof ScoringClassifier)) {
                    throw new StageError("Venn ABERS can only be run with a ScoringClassifier type algorithm");
                }
                AVAPClassifier vap = new AVAPClassifier((ScoringClassifier) alg, strategy, seed);
                predictor = vap;
                chem = new ChemVAPClassifier(vap);
                break;
            }
            default:
                throw new Options.UsageError("Parameter --predictor-type invalid: " + ptype.getName() + " is not possible");
        }
        if (!ptype.isClassification() && strategy.isStratified()) {
            throw new StageError("Stratified sampling is only supported for classification");
        }
        return chem;
    }

    static NCMMondrianClassification classificationNCM(NCM ncm, MLAlgorithm alg) {
        if (!(alg instanceof Classifier)) {
            throw new StageError("Scorer " + alg.getName() + " is not a classification algorithm");
        }
        if (ncm == null) {
            if (alg instanceof SVC) {
                return new NegativeDistanceToHyperplaneNCM((SVC) alg);
            }
            if (alg instanceof PseudoProbabilisticClassifier) {
                return new InverseProbabilityNCM((PseudoProbabilisticClassifier) alg);
            }
            throw new StageError("No --ncm given and no default NCM for scorer " + alg.getName());
        }
        if (!(ncm instanceof NCMMondrianClassification)) {
            throw new StageError("NCM " + ncm.getName() + " not allowed for CP Classification");
        }
        NCMMondrianClassification c = (NCMMondrianClassification) ncm;
        try {
            c.setModel((Classifier) alg);
        } catch (IllegalArgumentException e) {
            throw new StageError("NCM " + ncm.getName() + " does not support scorer " + alg.getName());
        }
        return c;
    }

    /** "1,2", "3 4" (already split) and ranges "[1..5]" / "1..5". */
    static List<Integer> parseSplits(List<String> tokens) {
        List<Integer> out = new ArrayList<>();
        for (String t : tokens) {
            String s = t.replace("[", "").replace("]", "").trim();
            if (s.isEmpty()) {
                continue;
            }
            try {
                int dots = s.indexOf("..");
                if (dots >= 0) {
                    int a = Integer.parseInt(s.substring(0, dots).trim());
                    int b = Integer.parseInt(s.substring(dots + 2).trim());
                    for (int i = a; i <= b; i++) {
                        out.add(i);
                    }
                } else {
                    out.add(Integer.parseInt(s));
                }
            } catch (NumberFormatException e) {
                throw new Options.UsageError("Invalid value for --splits: '" + t + "'");
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ fast-aggregate

    static int aggregate(String cmd, List<String> args) throws Exception {
        Options o = new Options(cmd)
                .option(Options.Arity.MANY, "--model-files", "-m")
                .option(Options.Arity.ONE, "--model-out", "-mo")
                .option(Options.Arity.ONE, "--model-name", "-mn")
                .parse(args);
        List<Path> models = resolveModelFiles(o.list("--model-files"));
        if (models.isEmpty()) {
            throw new Options.UsageError("Parameter --model-files must be given (no model files found)");
        }
        File out = outputFile(o.require("--model-out"));
        OUT.println("Starting to aggregate models...");
        ChemPredictor base = null;
        for (Path p : models) {
            ChemPredictor m;
            try {
                m = ModelSerializer.loadChemPredictor(p.toAbsolutePath().toUri(), null);
            } catch (Exception e) {
                throw new StageError("Failed loading model " + p + ": " + e.getMessage(), e);
            }
            restoreHyperParameters(m, p);
            if (base == null) {
                base = m;
                if (!(m.getPredictor() instanceof AggregatedPredictor)) {
                    throw new StageError("Cannot aggregate non-aggregated (e.g. TCP) models: " + p);
                }
            } else {
                join(base, m, p);
            }
            OUT.println(" - Aggregated model " + p);
        }
        if (o.has("--model-name") && !o.get("--model-name").isBlank()) {
            base.withModelInfo(new ModelInfo(o.get("--model-name")));
        }
        ModelSerializer.saveModel(base, out, null);
        OUT.printf("Successfully aggregated %d models.%n", models.size());
        OUT.println("Aggregated model saved at:");
        OUT.println(out);
        return EXIT_OK;
    }

    static void join(ChemPredictor base, ChemPredictor other, Path source) {
        if (base.getClass() != other.getClass()
                || base.getPredictor().getClass() != other.getPredictor().getClass()) {
            throw new StageError("Model " + source + " is of another type than the first model");
        }
        if (!base.getDataset().equalDescriptors(other.getDataset())) {
            throw new StageError("Model " + source + " has other descriptors/signatures than the first model");
        }
        if (base instanceof ChemClassifier
                && !((ChemClassifier) base).getLabels().equals(((ChemClassifier) other).getLabels())) {
            throw new StageError("Model " + source + " has labels " + ((ChemClassifier) other).getLabels()
                    + ", the first model " + ((ChemClassifier) base).getLabels());
        }
        Predictor b = base.getPredictor();
        Predictor n = other.getPredictor();
        if (b instanceof ACPClassifier) {
            for (Map.Entry<Integer, ICPClassifier> e : ((ACPClassifier) n).getPredictors().entrySet()) {
                ((ACPClassifier) b).addICP(e.getValue(), e.getKey());
            }
        } else if (b instanceof ACPRegressor) {
            for (Map.Entry<Integer, ICPRegressor> e : ((ACPRegressor) n).getPredictors().entrySet()) {
                ((ACPRegressor) b).addICP(e.getValue(), e.getKey());
            }
        } else if (b instanceof AVAPClassifier) {
            Map<Integer, ?> target = ((AVAPClassifier) b).getModels();
            for (Integer k : ((AVAPClassifier) n).getModels().keySet()) {
                if (target.containsKey(k)) {
                    throw new StageError("Split " + (k + 1) + " occurs in more than one model (" + source + ")");
                }
            }
            ((AVAPClassifier) b).getModels().putAll(((AVAPClassifier) n).getModels());
        } else {
            throw new StageError("Cannot aggregate models of type " + b.getClass().getSimpleName());
        }
    }

    /**
     * Loading a model restores the trained scorers but not their hyper-parameters (cost,
     * epsilon, ...), which would then be saved with default values. Set them again from the
     * model's cpsign.json (parameters.predictor), so the aggregated model's meta data says
     * what the partial models were trained with (as CPSign's jar-level fast-aggregate keeps).
     */
    static void restoreHyperParameters(ChemPredictor model, Path jar) {
        Map<String, Object> props;
        try {
            Object section = ModelIO.getCPSignProperties(jar.toAbsolutePath().toUri()).get("parameters");
            Object predictor = section instanceof Map ? ((Map<?, ?>) section).get("predictor") : null;
            if (!(predictor instanceof Map)) {
                return;
            }
            props = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) predictor).entrySet()) {
                props.put(String.valueOf(e.getKey()), e.getValue());
            }
        } catch (IOException | RuntimeException e) {
            return; // meta data only: predictions do not depend on it
        }
        Predictor p = model.getPredictor();
        if (p instanceof ACPRegressor) {
            for (ICPRegressor icp : ((ACPRegressor) p).getPredictors().values()) {
                setHyperParameters(icp.getNCM().getModel(), props, "");
                setHyperParameters(icp.getNCM().getErrorModel(), props, "ERROR_MODEL_");
            }
        } else if (p instanceof ACPClassifier) {
            for (ICPClassifier icp : ((ACPClassifier) p).getPredictors().values()) {
                setHyperParameters(icp.getNCM().getModel(), props, "");
            }
        } else if (p instanceof AVAPClassifier) {
            // Venn-ABERS models keep the scorer's settings in a nested "targetModelInfo" map
            Map<String, Object> scorer = props;
            if (props.get("targetModelInfo") instanceof Map) {
                scorer = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : ((Map<?, ?>) props.get("targetModelInfo")).entrySet()) {
                    scorer.put(String.valueOf(e.getKey()), e.getValue());
                }
            }
            setHyperParameters(((AVAPClassifier) p).getScoringAlgorithm(), scorer, "");
            for (IVAPClassifier ivap : ((AVAPClassifier) p).getModels().values()) {
                setHyperParameters(ivap.getScoringAlgorithm(), scorer, "");
            }
        }
    }

    static void setHyperParameters(MLAlgorithm alg, Map<String, Object> props, String prefix) {
        if (alg == null) {
            return;
        }
        Map<String, Object> config = new LinkedHashMap<>();
        for (ConfigParameter c : alg.getConfigParameters()) {
            for (String name : c.getNames()) {
                Object v = props.get(prefix + name);
                if (v != null) {
                    config.put(c.getNames().get(0), v);
                    break;
                }
            }
        }
        if (!config.isEmpty()) {
            try {
                alg.setConfigParameters(config);
            } catch (RuntimeException e) {
                // meta data only
            }
        }
    }

    /** Explicit files, globs (expanded here when the shell did not) and directories (their *.jar). */
    static List<Path> resolveModelFiles(List<String> specs) throws IOException {
        List<Path> out = new ArrayList<>();
        for (String spec : specs) {
            for (String s : spec.split(",(?=\\S)")) { // tolerate "a.jar,b.jar"
                if (s.isBlank()) {
                    continue;
                }
                Path p = Paths.get(s);
                if (s.contains("*") || s.contains("?") || s.contains("[")) {
                    Path dir = p.getParent() == null ? Paths.get(".") : p.getParent();
                    List<Path> found = new ArrayList<>();
                    if (Files.isDirectory(dir)) {
                        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, p.getFileName().toString())) {
                            for (Path f : ds) {
                                if (Files.isRegularFile(f)) {
                                    found.add(f);
                                }
                            }
                        }
                    }
                    if (found.isEmpty()) {
                        throw new StageError("No model file matches " + s);
                    }
                    found.sort(null);
                    out.addAll(found);
                } else if (Files.isDirectory(p)) {
                    List<Path> found = new ArrayList<>();
                    try (DirectoryStream<Path> ds = Files.newDirectoryStream(p, "*.jar")) {
                        ds.forEach(found::add);
                    }
                    found.sort(null);
                    out.addAll(found);
                } else if (Files.isRegularFile(p)) {
                    out.add(p);
                } else {
                    throw new StageError("No such model file: " + s);
                }
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ predict

    static int predict(List<String> args) throws Exception {
        Options o = new Options("predict")
                .option(Options.Arity.ONE, "--model", "-m")
                .option(Options.Arity.CHEM_FILE, "--predict-file", "-p")
                .option(Options.Arity.MANY, "--confidences", "-co")
                .option(Options.Arity.ONE, "--output-format", "-of")
                .option(Options.Arity.ONE, "--output", "-o")
                .parse(args);
        Path modelPath = Paths.get(o.require("--model"));
        if (!o.has("--predict-file")) {
            throw new Options.UsageError("Missing required option: '--predict-file' (cpsign-stage has no --smiles)");
        }
        String format = o.has("--output-format") ? o.get("--output-format").trim() : "json";
        if (!format.equalsIgnoreCase("json")) {
            throw new Options.UsageError("Output format '" + format + "' is not supported by cpsign-stage (only json)");
        }
        List<Double> confidences = new ArrayList<>();
        for (String c : o.splitList("--confidences")) {
            try {
                double v = Double.parseDouble(c);
                if (!(v >= 0 && v <= 1)) {
                    throw new NumberFormatException();
                }
                confidences.add(v);
            } catch (NumberFormatException e) {
                throw new Options.UsageError("Invalid confidence '" + c + "' (a number in [0,1])");
            }
        }
        CSVFile file = chemFile(o.list("--predict-file"), "--predict-file");
        if (!Files.isRegularFile(modelPath)) {
            throw new StageError("--model: no such file: " + modelPath);
        }
        ChemPredictor model;
        try {
            model = ModelSerializer.loadChemPredictor(modelPath.toAbsolutePath().toUri(), null);
        } catch (Exception e) {
            throw new StageError("Failed loading model " + modelPath + ": " + e.getMessage(), e);
        }
        if (!model.getPredictor().isTrained()) {
            throw new StageError("Given model was not trained - only a trained model can be used in predict"
                    + " (aggregate all splits first)");
        }
        if (confidences.isEmpty() && model instanceof ChemCPRegressor) {
            throw new Options.UsageError("Parameter --confidences is required for regression models");
        }

        ProgressTracker tracker = ProgressTracker.createNoEarlyStopping();
        int ok = 0;
        int failedPredictions = 0;
        Writer w = o.has("--output")
                ? Files.newBufferedWriter(outputFile(o.get("--output")).toPath(), StandardCharsets.UTF_8)
                : new BufferedWriter(new OutputStreamWriter(OUT, StandardCharsets.UTF_8));
        try (ChemFileIterator mols = file.getIterator(tracker)) {
            while (mols.hasNext()) {
                IAtomContainer mol = mols.next();
                Map<String, Object> molecule = moleculeSection(mol);
                Map<String, Object> prediction;
                try {
                    prediction = predictOne(model, mol, confidences);
                } catch (Exception e) {
                    failedPredictions++;
                    ERR.printf("Failed predicting record %s (%s): %s%n",
                            mol.getProperty("cpsign:record-index"), mol.getProperty("cpsign:SMILES"),
                            e.getMessage() != null ? e.getMessage() : e.toString());
                    continue;
                }
                Map<String, Object> record = new LinkedHashMap<>();
                record.put("molecule", molecule);
                record.put("prediction", prediction);
                w.write(ok == 0 ? "[" + System.lineSeparator() : "," + System.lineSeparator());
                w.write(Json.write(record));
                ok++;
            }
            w.write(ok == 0 ? "[ ]" + System.lineSeparator() : System.lineSeparator() + "]" + System.lineSeparator());
        } catch (IOException e) {
            throw new StageError("Failed reading " + file.getURI() + ": " + e.getMessage(), e);
        } finally {
            if (o.has("--output")) {
                w.close();
            } else {
                w.flush();
            }
        }
        for (FailedRecord r : tracker.getFailures()) {
            ERR.printf("Failed record %d: %s%s%n", r.getIndex(), r.getCause().getMessage(),
                    r.hasReason() ? " (" + r.getReason() + ")" : "");
        }
        int failed = failedPredictions + tracker.getFailures().size();
        PrintStream info = o.has("--output") ? OUT : ERR;
        info.printf("Successfully predicted %d molecules%s.%n", ok,
                failed > 0 ? String.format(", failed predicting %d records", failed) : "");
        if (ok == 0) {
            throw new StageError("No molecule could be predicted");
        }
        return EXIT_OK;
    }

    /** The input record's columns (as read, without CPSign's internal properties). */
    static Map<String, Object> moleculeSection(IAtomContainer mol) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (Map.Entry<Object, Object> e : mol.getProperties().entrySet()) {
            if (!(e.getKey() instanceof String) || e.getValue() == null) {
                continue;
            }
            String k = (String) e.getKey();
            if (k.startsWith("cpsign:") || k.startsWith("cdk:")) {
                continue;
            }
            m.put(k, e.getValue().toString());
        }
        return m;
    }

    static double round3(double v) {
        return Double.isFinite(v) ? MathUtils.roundTo3significantFigures(v) : v;
    }

    /** The "prediction" section, laid out as CPSign 2's JSON output. */
    static Map<String, Object> predictOne(ChemPredictor model, IAtomContainer mol, List<Double> confidences)
            throws Exception {
        Map<String, Object> p = new LinkedHashMap<>();
        if (model instanceof ChemCPRegressor) {
            CPRegressionPrediction r = ((ChemCPRegressor) model).predict(mol, confidences);
            p.put("midpoint", round3(r.getY_hat()));
            List<Object> intervals = new ArrayList<>();
            for (PredictedInterval pi : r.getIntervals().values()) {
                Map<String, Object> i = new LinkedHashMap<>();
                i.put("confidence", round3(pi.getConfidence()));
                i.put("rangeLower", pi.getInterval() != null ? round3(pi.getInterval().lowerEndpoint()) : Double.NaN);
                i.put("rangeUpper", pi.getInterval() != null ? round3(pi.getInterval().upperEndpoint()) : Double.NaN);
                i.put("rangeLowerCapped", pi.getCappedInterval() != null ? round3(pi.getCappedInterval().lowerEndpoint()) : Double.NaN);
                i.put("rangeUpperCapped", pi.getCappedInterval() != null ? round3(pi.getCappedInterval().upperEndpoint()) : Double.NaN);
                i.put("predictionWidth", round3(pi.getIntervalWidth()));
                intervals.add(i);
            }
            p.put("intervals", intervals);
        } else if (model instanceof ChemCPClassifier) {
            ChemCPClassifier c = (ChemCPClassifier) model;
            Map<String, Double> raw = c.predict(mol);
            Map<String, Object> pvals = new LinkedHashMap<>();
            for (String label : c.getLabels().values()) { // the model's label order
                pvals.put(label, round3(raw.get(label)));
            }
            p.put("pValues", pvals);
            if (!confidences.isEmpty()) {
                List<Object> sets = new ArrayList<>();
                for (double conf : confidences) {
                    List<String> labels = new ArrayList<>();
                    for (Map.Entry<String, Object> e : pvals.entrySet()) {
                        // CPSign: a label is in the set when its (rounded) p-value > 1 - confidence
                        if ((Double) e.getValue() > 1 - conf) {
                            labels.add(e.getKey());
                        }
                    }
                    Map<String, Object> set = new LinkedHashMap<>();
                    set.put("confidence", conf);
                    set.put("labels", labels);
                    sets.add(set);
                }
                p.put("predictedLabels", sets);
            }
        } else if (model instanceof ChemVAPClassifier) {
            ChemVAPClassifier v = (ChemVAPClassifier) model;
            CVAPPrediction<String> r = v.predict(mol);
            Map<String, Object> probs = new LinkedHashMap<>();
            for (String label : v.getLabels().values()) {
                Double prob = r.getProbabilities().get(label);
                probs.put(label, prob == null ? Double.NaN : round3(prob));
            }
            p.put("probabilities", probs);
            p.put("p0p1IntervalMeanWidth", round3(r.getMeanP0P1Width()));
            p.put("p0p1IntervalMedianWidth", round3(r.getMedianP0P1Width()));
        } else {
            throw new StageError("Unsupported model type " + model.getClass().getSimpleName());
        }
        return p;
    }
}
