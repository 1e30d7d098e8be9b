'use strict';
// Validates Kubernetes manifests offline against the OpenAPI schemas that the
// npm packages kubernetes-models and @kubernetes-models/keda ship (versions
// pinned in package-lock.json), and rejects every field that those schemas
// do not define. The schemas alone allow unknown fields, as the API server
// does by default, so a misspelled optional field would otherwise pass.
//
// Usage: node validate_manifests.cjs PATH...
// Each PATH is a YAML file or a folder whose *.yaml files are read, except
// kustomization.yaml, which is no Kubernetes object. Exit status 0 when every
// document is valid, 1 otherwise, with one line per problem on stderr.

const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

// The model modules by apiVersion; each exports one class per kind.
const kModelModules = {
    'v1': 'kubernetes-models/v1',
    'apps/v1': 'kubernetes-models/apps/v1',
    'batch/v1': 'kubernetes-models/batch/v1',
    'policy/v1': 'kubernetes-models/policy/v1',
    'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
    'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
};

const kKustomizationFile = 'kustomization.yaml';

// Finds the model class of an object, or returns null for an apiVersion or
// kind that no loaded package defines.
function FindModel(api_version, kind) {
    const module_name = kModelModules[api_version];
    if (module_name === undefined || typeof kind !== 'string') {
        return null;
    }
    const model = require(module_name)[kind];
    if (typeof model !== 'function' || model.apiVersion !== api_version || model.kind !== kind) {
        return null;
    }
    return model;
}

function IsPlainObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// Serializes `value` as JSON and records, for each property, the offset of
// its key in the text and its JSON pointer, so that a compiler diagnostic at
// an offset can name the field it is about.
function JsonWithKeyOffsets(value) {
    const keys = [];
    let text = '';
    function Write(item, pointer) {
        if (Array.isArray(item)) {
            text += '[';
            item.forEach((element, index) => {
                text += index === 0 ? '' : ',';
                Write(element, `${pointer}/${index}`);
            });
            text += ']';
        } else if (IsPlainObject(item)) {
            text += '{';
            Object.entries(item).forEach(([key, field], index) => {
                text += index === 0 ? '\n' : ',\n';
                keys.push({ offset: text.length, pointer: `${pointer}/${key}` });
                text += `${JSON.stringify(key)}: `;
                Write(field, `${pointer}/${key}`);
            });
            text += '}';
        } else {
            text += JSON.stringify(item);
        }
    }
    Write(value, '');
    return { text, keys };
}

// Checks objects against the TypeScript declarations that the model packages
// ship, which list every field of every type. The JSON schemas of those
// packages allow unknown fields, like the API server's defaults, so only the
// compiler's excess property check catches a misspelled optional field.
// Each object becomes `const value: IKind = {...}` in an in-memory file.
// Returns one array per object of { unknown, text }, where `unknown` marks
// a field that the declarations do not define.
// TypeScript's "Object literal may only specify known properties" errors,
// without and with a suggested name.
const kUnknownFieldCodes = new Set([2353, 2561]);
let previous_program;
function FindFieldProblems(objects) {
    const ts = require('typescript');
    const node_modules = path.dirname(path.dirname(require.resolve('typescript')));
    const sources = new Map();
    const offsets = new Map();
    objects.forEach((object, index) => {
        const file = path.join(node_modules, '..', `manifest_${index}.ts`);
        const module_name = `${kModelModules[object.apiVersion]}/${object.kind}`;
        const header = `import type { I${object.kind} } from ${JSON.stringify(module_name)};\n` +
            `export const value: I${object.kind} = `;
        const { text, keys } = JsonWithKeyOffsets(object);
        sources.set(file, `${header}${text};\n`);
        offsets.set(file, { index, base: header.length, keys });
    });

    const options = {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
        target: ts.ScriptTarget.ES2020,
        module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        baseUrl: node_modules,
    };
    const host = ts.createCompilerHost(options);
    const read_file = host.readFile.bind(host);
    const get_source_file = host.getSourceFile.bind(host);
    host.fileExists = (file) => sources.has(path.resolve(file)) || ts.sys.fileExists(file);
    host.readFile = (file) => sources.get(path.resolve(file)) ?? read_file(file);
    host.getSourceFile = (file, language, ...rest) => {
        const text = sources.get(path.resolve(file));
        return text === undefined ? get_source_file(file, language, ...rest)
                                  : ts.createSourceFile(file, text, language, true);
    };
    const program = ts.createProgram([...sources.keys()], options, host, previous_program);
    previous_program = program;

    const problems = objects.map(() => []);
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
        const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
        const where = diagnostic.file && offsets.get(path.resolve(diagnostic.file.fileName));
        if (!where) {
            throw new Error(`TypeScript: ${message}`);
        }
        const offset = diagnostic.start - where.base;
        const key = where.keys.filter((k) => k.offset <= offset).pop();
        const pointer = key ? key.pointer : '/';
        const unknown = kUnknownFieldCodes.has(diagnostic.code);
        const suggestion = /Did you mean to write '[^']*'\?/.exec(message);
        const text = !unknown ? `${pointer}: ${message}`
            : suggestion ? `${pointer}: unknown field. ${suggestion[0]}`
                         : `${pointer}: unknown field`;
        problems[where.index].push({ unknown, text });
    }
    return problems;
}

// Returns the schema problems of each parsed object, checked with the
// models' compiled JSON schemas (types, required fields, enums, formats).
function FindSchemaProblems(object, model) {
    try {
        new model(object).validate();
        return [];
    } catch (error) {
        if (!Array.isArray(error.errors)) {
            throw error;
        }
        return error.errors.map((detail) => `${detail.instancePath || '/'}: ${detail.message}`);
    }
}

// Returns the problems of each parsed object, each as `Kind name: message`.
function ValidateObjects(objects) {
    const known = [];
    const results = objects.map((object) => {
        if (!IsPlainObject(object)) {
            return ['the document is not a mapping'];
        }
        const name = (IsPlainObject(object.metadata) && object.metadata.name) || '(no name)';
        const label = `${object.kind} ${name}`;
        const model = FindModel(object.apiVersion, object.kind);
        if (model === null) {
            return [`${label}: no schema for ${object.apiVersion} ${object.kind}`];
        }
        const problems = FindSchemaProblems(object, model).map((p) => `${label}: ${p}`);
        known.push({ object, label, problems });
        return problems;
    });
    // The compiler repeats a wrong type or a missing field that the schema
    // check has already reported, in longer words, so for an object with
    // schema problems only its unknown fields are added.
    const field_problems = FindFieldProblems(known.map((entry) => entry.object));
    known.forEach((entry, index) => {
        const schema_valid = entry.problems.length === 0;
        const added = field_problems[index].filter((problem) => schema_valid || problem.unknown);
        entry.problems.push(...added.map((problem) => `${entry.label}: ${problem.text}`));
    });
    return results;
}

function ValidateObject(object) {
    return ValidateObjects([object])[0];
}

// Lists the manifest files of each path: the path itself for a file, the
// *.yaml files but kustomization.yaml for a folder, in name order.
function ManifestFiles(paths) {
    const files = [];
    for (const entry of paths) {
        if (!fs.statSync(entry).isDirectory()) {
            files.push(entry);
            continue;
        }
        const names = fs.readdirSync(entry)
            .filter((name) => name.endsWith('.yaml') && name !== kKustomizationFile)
            .sort();
        files.push(...names.map((name) => path.join(entry, name)));
    }
    return files;
}

// Parses every document of one file as YAML 1.1, the version Kubernetes'
// own parser reads (so `0440` is octal), and returns them with their
// syntax errors.
function ParseFile(file) {
    const documents = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'), { version: '1.1' });
    return documents
        .filter((document) => document.contents !== null)
        .map((document) => ({ document, errors: document.errors.map((e) => e.message) }));
}

// Returns the objects of the files that `paths` names, as { file, object }.
// Throws on a YAML syntax error.
function LoadManifests(...paths) {
    const manifests = [];
    for (const file of ManifestFiles(paths)) {
        for (const { document, errors } of ParseFile(file)) {
            if (errors.length > 0) {
                throw new Error(`${file}: ${errors.join('; ')}`);
            }
            manifests.push({ file, object: document.toJS() });
        }
    }
    return manifests;
}

// Returns every problem of the files that `paths` names, each prefixed with
// its file.
function ValidatePaths(paths) {
    const problems = [];
    const objects = [];
    for (const file of ManifestFiles(paths)) {
        const parsed = ParseFile(file);
        if (parsed.length === 0) {
            problems.push(`${file}: no YAML document`);
        }
        for (const { document, errors } of parsed) {
            if (errors.length > 0) {
                problems.push(...errors.map((message) => `${file}: ${message}`));
            } else {
                objects.push({ file, object: document.toJS() });
            }
        }
    }
    const results = ValidateObjects(objects.map((entry) => entry.object));
    objects.forEach(({ file }, index) => {
        problems.push(...results[index].map((problem) => `${file}: ${problem}`));
    });
    return problems;
}

function Main(argv) {
    if (argv.length === 0) {
        process.stderr.write('usage: node validate_manifests.cjs PATH...\n');
        return 2;
    }
    const files = ManifestFiles(argv);
    const problems = ValidatePaths(argv);
    for (const problem of problems) {
        process.stderr.write(`${problem}\n`);
    }
    if (problems.length > 0) {
        process.stderr.write(`${problems.length} problems in ${files.length} files\n`);
        return 1;
    }
    process.stdout.write(`${files.length} files valid\n`);
    return 0;
}

module.exports = { FindModel, LoadManifests, ValidateObject, ValidateObjects, ValidatePaths,
                   kKustomizationFile };

if (require.main === module) {
    process.exitCode = Main(process.argv.slice(2));
}
