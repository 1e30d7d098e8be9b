'use strict';
// Tests of validate_manifests.cjs on broken copies of the real manifests,
// and checks that the manifests in deploy/kubernetes agree with each other
// and with the processes they run. Run with NODE_PATH naming the
// node_modules folder of package.json (scripts/check-deploy.sh does).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');
const { LoadManifests, ValidateObject, ValidatePaths, kKustomizationFile } =
    require('./validate_manifests.cjs');

const kManifestFolder = path.resolve(__dirname, '../../deploy/kubernetes');
const kSecretExample = 'secret.example.yaml';
const manifests = LoadManifests(kManifestFolder);

// Returns a deep copy of the manifest of that kind and name, so that a test
// can break it without touching the others.
function CopyOf(kind, name) {
    const found = manifests.filter((m) => m.object.kind === kind && m.object.metadata.name === name);
    assert.equal(found.length, 1, `expected one ${kind} ${name}`);
    return structuredClone(found[0].object);
}

function ObjectsOfKind(kind) {
    return manifests.map((m) => m.object).filter((object) => object.kind === kind);
}

function ProblemsMatching(object, pattern) {
    return ValidateObject(object).filter((problem) => pattern.test(problem));
}

function DurationSeconds(text) {
    const match = /^(\d+)(ms|s|m|h)$/.exec(text);
    assert.ok(match, `unexpected duration ${text}`);
    const unit_seconds = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2]];
    return Number(match[1]) * unit_seconds;
}

function EnvValue(container, name) {
    const entry = (container.env || []).find((variable) => variable.name === name);
    return entry === undefined ? undefined : entry.value;
}

function PortOf(listen_address) {
    return Number(listen_address.slice(listen_address.lastIndexOf(':') + 1));
}

function LabelsMatch(selector, labels) {
    return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

const deployments = ObjectsOfKind('Deployment');
const pod_specs = [...deployments, ...ObjectsOfKind('Job')].map((o) => o.spec.template.spec);

test('every manifest is valid', () => {
    assert.deepEqual(ValidatePaths([kManifestFolder]), []);
});

test('every folder manifest was read', () => {
    const files = fs.readdirSync(kManifestFolder).filter((f) => f.endsWith('.yaml'));
    const read = new Set(manifests.map((m) => path.basename(m.file)));
    for (const file of files.filter((f) => f !== kKustomizationFile)) {
        assert.ok(read.has(file), `${file} was not read`);
    }
});

test('misspelled container field is rejected', () => {
    const deployment = CopyOf('Deployment', 'conveyor-api');
    const container = deployment.spec.template.spec.containers[0];
    container.imagePullPolicyy = container.imagePullPolicy;
    delete container.imagePullPolicy;
    const problems = ProblemsMatching(deployment, /containers\/0\/imagePullPolicyy: unknown field/);
    assert.equal(problems.length, 1, ValidateObject(deployment).join('\n'));
});

test('field at wrong level is rejected', () => {
    const deployment = CopyOf('Deployment', 'conveyor-worker');
    const pod = deployment.spec.template.spec;
    pod.livenessProbe = pod.containers[0].livenessProbe;
    const problems = ProblemsMatching(deployment, /template\/spec\/livenessProbe: unknown field/);
    assert.equal(problems.length, 1, ValidateObject(deployment).join('\n'));
});

test('misspelled metadata field is rejected', () => {
    const service = CopyOf('Service', 'conveyor-api');
    service.metadata.label = service.metadata.labels;
    const problems = ProblemsMatching(service, /\/metadata\/label: unknown field/);
    assert.equal(problems.length, 1, ValidateObject(service).join('\n'));
});

test('wrong type is rejected', () => {
    const deployment = CopyOf('Deployment', 'conveyor-api');
    deployment.spec.template.spec.terminationGracePeriodSeconds = '45';
    const problems = ProblemsMatching(deployment, /terminationGracePeriodSeconds.*must be integer/);
    assert.equal(problems.length, 1, ValidateObject(deployment).join('\n'));
});

test('missing required field is rejected', () => {
    const deployment = CopyOf('Deployment', 'conveyor-worker');
    delete deployment.spec.template.spec.containers[0].name;
    const problems = ProblemsMatching(deployment, /containers\/0: must have required property '?name'?$/);
    assert.equal(problems.length, 1, ValidateObject(deployment).join('\n'));
});

test('misspelled ScaledObject field is rejected', () => {
    const scaled_object = CopyOf('ScaledObject', 'conveyor-worker');
    scaled_object.spec.minReplicaCountt = scaled_object.spec.minReplicaCount;
    const problems = ProblemsMatching(scaled_object, /\/spec\/minReplicaCountt: unknown field/);
    assert.equal(problems.length, 1, ValidateObject(scaled_object).join('\n'));
});

test('wrong ScaledObject type is rejected', () => {
    const scaled_object = CopyOf('ScaledObject', 'conveyor-worker');
    scaled_object.spec.maxReplicaCount = '20';
    const problems = ProblemsMatching(scaled_object, /maxReplicaCount.*must be integer/);
    assert.equal(problems.length, 1, ValidateObject(scaled_object).join('\n'));
});

test('ScaledObject trigger without type is rejected', () => {
    const scaled_object = CopyOf('ScaledObject', 'conveyor-worker');
    delete scaled_object.spec.triggers[0].type;
    const problems = ProblemsMatching(scaled_object, /triggers\/0: must have required property '?type'?$/);
    assert.equal(problems.length, 1, ValidateObject(scaled_object).join('\n'));
});

test('misspelled TriggerAuthentication field is rejected', () => {
    const authentication = CopyOf('TriggerAuthentication', 'conveyor-database');
    authentication.spec.secretTargetRef[0].parametr = 'connection';
    const problems = ProblemsMatching(authentication, /secretTargetRef\/0\/parametr: unknown field/);
    assert.equal(problems.length, 1, ValidateObject(authentication).join('\n'));
});

test('unknown kind is rejected', () => {
    const deployment = CopyOf('Deployment', 'conveyor-api');
    deployment.kind = 'Deploymnet';
    const problems = ProblemsMatching(deployment, /no schema for apps\/v1 Deploymnet/);
    assert.equal(problems.length, 1, ValidateObject(deployment).join('\n'));
});

test('unknown apiVersion is rejected', () => {
    const budget = CopyOf('PodDisruptionBudget', 'conveyor-api');
    budget.apiVersion = 'policy/v1beta1';
    const problems = ProblemsMatching(budget, /no schema for policy\/v1beta1 PodDisruptionBudget/);
    assert.equal(problems.length, 1, ValidateObject(budget).join('\n'));
});

test('broken file is reported with its name', (t) => {
    const folder = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'conveyor-deploy-'));
    t.after(() => fs.rmSync(folder, { recursive: true, force: true }));
    const deployment = CopyOf('Deployment', 'conveyor-api');
    deployment.spec.replica = 2;
    fs.writeFileSync(path.join(folder, 'broken.yaml'), YAML.stringify(deployment));
    const problems = ValidatePaths([folder]);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0], /broken\.yaml: Deployment conveyor-api: \/spec\/replica: unknown field/);
});

test('YAML is read as 1.1, like Kubernetes', () => {
    const deployment = CopyOf('Deployment', 'conveyor-api');
    const volume = deployment.spec.template.spec.volumes.find((v) => v.name === 'api-keys');
    assert.equal(volume.secret.defaultMode, 0o440);
});

test('termination grace exceeds shutdown grace', () => {
    for (const deployment of deployments) {
        const pod = deployment.spec.template.spec;
        const shutdown_grace = EnvValue(pod.containers[0], 'CONVEYOR_SHUTDOWN_GRACE');
        assert.ok(shutdown_grace, `${deployment.metadata.name} sets no CONVEYOR_SHUTDOWN_GRACE`);
        assert.ok(pod.terminationGracePeriodSeconds > DurationSeconds(shutdown_grace),
                  `${deployment.metadata.name}: grace period too short`);
    }
});

test('probes use health routes', () => {
    for (const deployment of deployments) {
        const container = deployment.spec.template.spec.containers[0];
        assert.equal(container.livenessProbe.httpGet.path, '/healthz', deployment.metadata.name);
        assert.equal(container.startupProbe.httpGet.path, '/healthz', deployment.metadata.name);
        assert.equal(container.readinessProbe.httpGet.path, '/readyz', deployment.metadata.name);
    }
});

test('probes target a declared port', () => {
    for (const deployment of deployments) {
        const container = deployment.spec.template.spec.containers[0];
        const port_names = new Set(container.ports.map((port) => port.name));
        for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
            assert.ok(port_names.has(container[probe].httpGet.port),
                      `${deployment.metadata.name} ${probe}`);
        }
    }
});

test('api listens on its container port', () => {
    const container = CopyOf('Deployment', 'conveyor-api').spec.template.spec.containers[0];
    assert.deepEqual(container.args, ['api']);
    const http_port = container.ports.find((port) => port.name === 'http').containerPort;
    assert.equal(PortOf(EnvValue(container, 'CONVEYOR_LISTEN')), http_port);
});

test('worker serves probes on metrics listen', () => {
    const container = CopyOf('Deployment', 'conveyor-worker').spec.template.spec.containers[0];
    assert.deepEqual(container.args, ['worker']);
    const metrics_port = container.ports.find((port) => port.name === 'metrics').containerPort;
    const metrics_listen = EnvValue(container, 'CONVEYOR_METRICS_LISTEN');
    assert.ok(metrics_listen, 'the worker sets no CONVEYOR_METRICS_LISTEN');
    assert.equal(PortOf(metrics_listen), metrics_port);
});

test('containers set requests and limits', () => {
    for (const pod of pod_specs) {
        for (const container of pod.containers) {
            for (const bound of ['requests', 'limits']) {
                assert.ok(container.resources[bound].cpu, `${container.name} ${bound}.cpu`);
                assert.ok(container.resources[bound].memory, `${container.name} ${bound}.memory`);
            }
        }
    }
});

test('pods run as non-root', () => {
    for (const pod of pod_specs) {
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.ok(pod.securityContext.runAsUser > 0);
        assert.equal(pod.automountServiceAccountToken, false);
        for (const container of pod.containers) {
            assert.equal(container.securityContext.readOnlyRootFilesystem, true, container.name);
            assert.equal(container.securityContext.allowPrivilegeEscalation, false, container.name);
            assert.deepEqual(container.securityContext.capabilities.drop, ['ALL'], container.name);
        }
    }
});

test('migration job runs migrate', () => {
    const job = CopyOf('Job', 'conveyor-migrate');
    assert.deepEqual(job.spec.template.spec.containers[0].args, ['migrate']);
});

test('service selects api pods', () => {
    const service = CopyOf('Service', 'conveyor-api');
    const api = CopyOf('Deployment', 'conveyor-api');
    const worker = CopyOf('Deployment', 'conveyor-worker');
    assert.ok(LabelsMatch(service.spec.selector, api.spec.template.metadata.labels));
    assert.ok(!LabelsMatch(service.spec.selector, worker.spec.template.metadata.labels));
    const port_names = api.spec.template.spec.containers[0].ports.map((port) => port.name);
    assert.ok(port_names.includes(service.spec.ports[0].targetPort));
});

test('deployment selectors match their pods', () => {
    for (const deployment of deployments) {
        assert.ok(LabelsMatch(deployment.spec.selector.matchLabels,
                              deployment.spec.template.metadata.labels),
                  deployment.metadata.name);
    }
});

test('each disruption budget covers one deployment', () => {
    const budgets = ObjectsOfKind('PodDisruptionBudget');
    assert.equal(budgets.length, 2);
    for (const budget of budgets) {
        const covered = deployments.filter((deployment) =>
            LabelsMatch(budget.spec.selector.matchLabels, deployment.spec.template.metadata.labels));
        assert.equal(covered.length, 1, budget.metadata.name);
    }
});

test('autoscalers target existing deployments', () => {
    const hpa = CopyOf('HorizontalPodAutoscaler', 'conveyor-api');
    const scaled_object = CopyOf('ScaledObject', 'conveyor-worker');
    assert.deepEqual(hpa.spec.scaleTargetRef,
                     { apiVersion: 'apps/v1', kind: 'Deployment', name: 'conveyor-api' });
    assert.deepEqual(scaled_object.spec.scaleTargetRef,
                     { apiVersion: 'apps/v1', kind: 'Deployment', name: 'conveyor-worker' });
    assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
});

test('deployments leave replicas to autoscalers', () => {
    for (const deployment of deployments) {
        assert.equal(deployment.spec.replicas, undefined, deployment.metadata.name);
    }
});

test('scaler counts pending tasks', () => {
    const scaled_object = CopyOf('ScaledObject', 'conveyor-worker');
    const trigger = scaled_object.spec.triggers[0];
    assert.equal(trigger.type, 'postgresql');
    assert.match(trigger.metadata.query, /sum\(pending\).*FROM task_counts UNION ALL SELECT pending FROM task_count_changes/);
    const authentication = CopyOf('TriggerAuthentication', trigger.authenticationRef.name);
    assert.equal(authentication.spec.secretTargetRef[0].parameter, 'connection');
    const worker = CopyOf('Deployment', 'conveyor-worker').spec.template.spec.containers[0];
    assert.equal(trigger.metadata.targetQueryValue, EnvValue(worker, 'CONVEYOR_CONCURRENCY'));
});

test('secret references name example keys', () => {
    const secret = CopyOf('Secret', 'conveyor');
    const keys = new Set(Object.keys(secret.stringData));
    const references = [];
    for (const pod of pod_specs) {
        for (const container of pod.containers) {
            for (const variable of container.env || []) {
                const ref = variable.valueFrom && variable.valueFrom.secretKeyRef;
                if (ref) {
                    references.push(ref);
                }
            }
        }
        for (const volume of pod.volumes || []) {
            if (volume.secret) {
                for (const item of volume.secret.items) {
                    references.push({ name: volume.secret.secretName, key: item.key });
                }
            }
        }
    }
    for (const authentication of ObjectsOfKind('TriggerAuthentication')) {
        references.push(...authentication.spec.secretTargetRef);
    }
    assert.ok(references.length >= 5);
    for (const reference of references) {
        assert.equal(reference.name, 'conveyor');
        assert.ok(keys.has(reference.key), `no key ${reference.key} in ${kSecretExample}`);
    }
});

test('api keys file lies in its mount', () => {
    const pod = CopyOf('Deployment', 'conveyor-api').spec.template.spec;
    const container = pod.containers[0];
    const keys_file = EnvValue(container, 'CONVEYOR_API_KEYS_FILE');
    const mount = container.volumeMounts.find((m) => m.name === 'api-keys');
    const volume = pod.volumes.find((v) => v.name === 'api-keys');
    assert.equal(keys_file, path.posix.join(mount.mountPath, volume.secret.items[0].path));
});

test('kustomization lists every manifest', () => {
    const kustomization = YAML.parse(
        fs.readFileSync(path.join(kManifestFolder, kKustomizationFile), 'utf8'));
    const files = fs.readdirSync(kManifestFolder)
        .filter((file) => file.endsWith('.yaml'))
        .filter((file) => file !== kKustomizationFile && file !== kSecretExample);
    assert.deepEqual([...kustomization.resources].sort(), files.sort());
    assert.equal(kustomization.images[0].name, deployments[0].spec.template.spec.containers[0].image.split(':')[0]);
});
