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

module.exports = { FindModel, kKustomizationFile };
