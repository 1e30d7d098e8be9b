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

// Returns the Ajv instance into which a model's schemas are registered: the
// one of the @kubernetes-models/validate copy that the model's package uses.
// NOTE: the package does not export it; this reads its dist/ajv.js, which
// the pinned version has. A different layout makes every check fail loudly.
function SchemaRegistryOf(module_name) {
    const module_file = require.resolve(module_name);
    const validate_entry = require.resolve('@kubernetes-models/validate',
                                           { paths: [path.dirname(module_file)] });
    return require(path.join(path.dirname(validate_entry), 'ajv.js')).ajv;
}

// Returns the schema id that the models' base class stores on a model's
// prototype under a private symbol.
function SchemaIdOf(model) {
    for (let prototype = model.prototype; prototype !== null;
         prototype = Object.getPrototypeOf(prototype)) {
        const symbol = Object.getOwnPropertySymbols(prototype)
            .find((candidate) => candidate.description === 'SCHEMA_ID');
        if (symbol !== undefined && typeof prototype[symbol] === 'string') {
            return prototype[symbol];
        }
    }
    throw new Error(`${model.apiVersion} ${model.kind}: no schema id on the model`);
}

function Resolve(registry, schema) {
    while (schema && typeof schema.$ref === 'string') {
        const id = schema.$ref.replace(/#$/, '');
        const compiled = registry.getSchema(id);
        if (compiled === undefined) {
            throw new Error(`schema ${id} is not registered`);
        }
        schema = compiled.schema;
    }
    return schema;
}

function IsPlainObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// Appends to `problems` one entry for each field of `value` that `schema`
// does not define, recursing into the fields it does define. A schema that
// allows any field (additionalProperties, or Kubernetes'
// x-kubernetes-preserve-unknown-fields) ends the search at that level.
function FindUnknownFields(registry, schema, value, pointer, problems) {
    schema = Resolve(registry, schema);
    if (!schema) {
        return;
    }
    for (const part of schema.allOf || []) {
        FindUnknownFields(registry, part, value, pointer, problems);
    }
    if (Array.isArray(value)) {
        if (schema.items) {
            value.forEach((item, index) =>
                FindUnknownFields(registry, schema.items, item, `${pointer}/${index}`, problems));
        }
        return;
    }
    if (!IsPlainObject(value) || schema['x-kubernetes-preserve-unknown-fields'] === true) {
        return;
    }
    const properties = schema.properties || {};
    const additional = schema.additionalProperties;
    for (const [key, field] of Object.entries(value)) {
        const field_pointer = `${pointer}/${key}`;
        if (Object.hasOwn(properties, key)) {
            FindUnknownFields(registry, properties[key], field, field_pointer, problems);
        } else if (IsPlainObject(additional)) {
            FindUnknownFields(registry, additional, field, field_pointer, problems);
        } else if (schema.properties !== undefined && additional !== true) {
            problems.push(`${field_pointer}: unknown field`);
        }
    }
}

// Returns the problems of one parsed object, each as `Kind name: message`.
function ValidateObject(object) {
    if (!IsPlainObject(object)) {
        return ['the document is not a mapping'];
    }
    const name = (IsPlainObject(object.metadata) && object.metadata.name) || '(no name)';
    const label = `${object.kind} ${name}`;
    const model = FindModel(object.apiVersion, object.kind);
    if (model === null) {
        return [`${label}: no schema for ${object.apiVersion} ${object.kind}`];
    }

    const problems = [];
    const instance = new model(object);
    try {
        instance.validate();
    } catch (error) {
        if (!Array.isArray(error.errors)) {
            throw error;
        }
        for (const detail of error.errors) {
            problems.push(`${detail.instancePath || '/'}: ${detail.message}`);
        }
    }

    const registry = SchemaRegistryOf(kModelModules[object.apiVersion]);
    const root = { $ref: SchemaIdOf(model) };
    FindUnknownFields(registry, root, object, '', problems);
    return problems.map((problem) => `${label}: ${problem}`);
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
    for (const file of ManifestFiles(paths)) {
        const parsed = ParseFile(file);
        if (parsed.length === 0) {
            problems.push(`${file}: no YAML document`);
        }
        for (const { document, errors } of parsed) {
            if (errors.length > 0) {
                problems.push(...errors.map((message) => `${file}: ${message}`));
                continue;
            }
            problems.push(...ValidateObject(document.toJS()).map((p) => `${file}: ${p}`));
        }
    }
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

module.exports = { FindModel, LoadManifests, ValidateObject, ValidatePaths, kKustomizationFile };

if (require.main === module) {
    process.exitCode = Main(process.argv.slice(2));
}
