#!/usr/bin/env node
'use strict';
/*
 * Reference benchmark: submit-to-commit latency of transactions sent with the
 * official Node client @hyperledger/fabric-gateway.
 *
 * Reads the connection profile written by `modelledger network up`
 * ($STATE/network/connection-profile.yaml), connects as one org/role user to
 * that org's first peer (Fabric Gateway, TLS), runs --warmup then --count
 * submits at --concurrency, and prints ONE JSON line with the figures on stdout.
 * Diagnostics go to stderr. See README.md.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');
const YAML = require('yaml');

// grpc-js always sets the TLS ServerName to the peer's host (or ssl_target_name); when that is an
// IP address (the generated profile uses 127.0.0.1), Node warns DEP0123 once. Harmless: the
// certificate is still checked against the IP SANs. Silence only that code.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? rest[0].code : rest[1];
    if (code === 'DEP0123') return;
    return emitWarning.call(process, warning, ...rest);
};

const CLIENT_NAME = 'node-fabric-gateway';
const GATEWAY_VERSION = require('@hyperledger/fabric-gateway/package.json').version;

const USAGE = `usage: node submit.js --profile FILE --function NAME [options]

  --profile FILE          connection profile (YAML), e.g. $STATE/network/connection-profile.yaml
  --msp MSPID             organisation to connect as (default Org1MSP)
  --role ROLE             user of that organisation (default registrar)
  --peer NAME             peer of that organisation (default: its first peer)
  --channel NAME          channel (default: the profile's channel)
  --chaincode NAME        chaincode (default registry)
  --function NAME         transaction function, e.g. RegisterDataset
  --arg TEMPLATE          argument template; repeat for several arguments.
                          Placeholders: {i} transaction index, {run} run id,
                          {sha256:i} sha256 hex of "<run id>:<i>"
  --count N               measured transactions (default 100)
  --concurrency C         transactions in flight at once (default 1)
  --warmup W              transactions before the measurement, not counted (default 0)
  --run-id ID             makes {sha256:i} unique across runs (default: random)
  --endorsing-orgs A,B    endorse on exactly these MSPs instead of the gateway's discovery
  --timeout-s S           deadline of each gRPC call (default 60)
  --verbose               print every failure on stderr (default: the first 5)
  --help`;

class SetupError extends Error {}

function parseCli(argv) {
    let parsed;
    try {
        parsed = parseArgs({
            args: argv,
            options: {
                profile: { type: 'string' },
                msp: { type: 'string', default: 'Org1MSP' },
                role: { type: 'string', default: 'registrar' },
                peer: { type: 'string' },
                channel: { type: 'string' },
                chaincode: { type: 'string', default: 'registry' },
                function: { type: 'string' },
                arg: { type: 'string', multiple: true, default: [] },
                count: { type: 'string', default: '100' },
                concurrency: { type: 'string', default: '1' },
                warmup: { type: 'string', default: '0' },
                'run-id': { type: 'string' },
                'endorsing-orgs': { type: 'string' },
                'timeout-s': { type: 'string', default: '60' },
                verbose: { type: 'boolean', default: false },
                help: { type: 'boolean', default: false },
            },
            strict: true,
            allowPositionals: false,
        });
    } catch (err) {
        throw new SetupError(`${err.message}\n${USAGE}`);
    }
    const v = parsed.values;
    if (v.help) {
        process.stdout.write(USAGE + '\n');
        process.exit(0);
    }
    if (!v.profile) throw new SetupError(`--profile is required\n${USAGE}`);
    if (!v.function) throw new SetupError(`--function is required\n${USAGE}`);
    const int = (name, min) => {
        const s = v[name];
        if (!/^\d+$/.test(s) || Number(s) < min) throw new SetupError(`--${name} must be an integer >= ${min}, got "${s}"`);
        return Number(s);
    };
    const timeout = Number(v['timeout-s']);
    if (!(timeout > 0)) throw new SetupError(`--timeout-s must be a positive number, got "${v['timeout-s']}"`);
    return {
        profile: v.profile,
        msp: v.msp,
        role: v.role,
        peer: v.peer,
        channel: v.channel,
        chaincode: v.chaincode,
        fn: v.function,
        args: v.arg,
        count: int('count', 1),
        concurrency: int('concurrency', 1),
        warmup: int('warmup', 0),
        runId: v['run-id'] || `${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`,
        endorsingOrgs: v['endorsing-orgs']
            ? v['endorsing-orgs'].split(',').map((s) => s.trim()).filter(Boolean)
            : undefined,
        timeoutMs: timeout * 1000,
        verbose: v.verbose,
    };
}

function readFile(file, what) {
    try {
        return fs.readFileSync(file);
    } catch (err) {
        throw new SetupError(`cannot read ${what} ${file}: ${err.message}`);
    }
}

/** Org, peer and user entries of the connection profile (see network/configuration.py connection_profile()). */
function loadProfile(opts) {
    let profile;
    try {
        profile = YAML.parse(readFile(opts.profile, 'connection profile').toString('utf8'));
    } catch (err) {
        if (err instanceof SetupError) throw err;
        throw new SetupError(`connection profile ${opts.profile} is not valid YAML: ${err.message}`);
    }
    const orgs = (profile && profile.organizations) || {};
    const org = orgs[opts.msp];
    if (!org) {
        throw new SetupError(`organisation ${opts.msp} not in ${opts.profile} (has: ${Object.keys(orgs).join(', ') || 'none'})`);
    }
    const peers = org.peers || [];
    if (peers.length === 0) throw new SetupError(`organisation ${opts.msp} has no peers in ${opts.profile}`);
    const peer = opts.peer ? peers.find((p) => p.name === opts.peer) : peers[0];
    if (!peer) {
        throw new SetupError(`peer ${opts.peer} not in ${opts.msp} (has: ${peers.map((p) => p.name).join(', ')})`);
    }
    const users = org.users || {};
    const user = users[opts.role];
    if (!user) {
        throw new SetupError(`role ${opts.role} has no user in ${opts.msp} (has: ${Object.keys(users).join(', ') || 'none'})`);
    }
    const channel = opts.channel || profile.channel;
    if (!channel) throw new SetupError(`no channel in ${opts.profile}; pass --channel`);
    return { channel, mspId: org.mspid || opts.msp, tlsRoot: org.tls_root, peer, user };
}

function loadIdentity(mspId, user) {
    const credentials = readFile(user.cert, 'identity certificate');
    let keyFiles;
    try {
        keyFiles = fs.readdirSync(user.keystore).filter((f) => fs.statSync(path.join(user.keystore, f)).isFile());
    } catch (err) {
        throw new SetupError(`cannot read keystore ${user.keystore}: ${err.message}`);
    }
    if (keyFiles.length !== 1) {
        throw new SetupError(`keystore ${user.keystore} must hold exactly one private key file, has ${keyFiles.length}`);
    }
    const keyFile = path.join(user.keystore, keyFiles[0]);
    let privateKey;
    try {
        privateKey = crypto.createPrivateKey(readFile(keyFile, 'private key'));
    } catch (err) {
        if (err instanceof SetupError) throw err;
        throw new SetupError(`cannot load private key ${keyFile}: ${err.message}`);
    }
    return { identity: { mspId, credentials }, signer: signers.newPrivateKeySigner(privateKey) };
}

function newGrpcClient(peer, tlsRoot) {
    const rootCert = readFile(tlsRoot, 'TLS root certificate');
    const tlsCredentials = grpc.credentials.createSsl(rootCert);
    const options = {};
    if (peer.ssl_target_name) options['grpc.ssl_target_name_override'] = peer.ssl_target_name;
    return new grpc.Client(peer.address, tlsCredentials, options);
}

function waitForReady(client, address, ms) {
    return new Promise((resolve, reject) => {
        client.waitForReady(Date.now() + ms, (err) => {
            if (err) reject(new SetupError(`cannot connect to peer ${address} over TLS within ${ms / 1000}s: ${err.message}`));
            else resolve();
        });
    });
}

/** Argument values for transaction i: {i}, {run} and {sha256:i} substituted. */
function argsFor(templates, runId, i) {
    const digest = crypto.createHash('sha256').update(`${runId}:${i}`).digest('hex');
    return templates.map((t) =>
        t.replaceAll('{sha256:i}', digest).replaceAll('{run}', runId).replaceAll('{i}', String(i)));
}

function describeError(err) {
    let msg = `${err.name || 'Error'}: ${err.message}`;
    if (Array.isArray(err.details) && err.details.length > 0) {
        msg += ' [' + err.details.map((d) => `${d.mspId}@${d.address}: ${d.message}`).join('; ') + ']';
    }
    return msg;
}

/**
 * Run transactions [first, first+n) with at most `concurrency` in flight.
 * Returns latencies (ms) of the successful ones and the number of failures.
 */
async function runPhase(contract, opts, first, n, report) {
    const latencies = [];
    let failed = 0;
    let next = first;
    const end = first + n;
    const proposalOptions = (i) => {
        const o = { arguments: argsFor(opts.args, opts.runId, i) };
        if (opts.endorsingOrgs) o.endorsingOrganizations = opts.endorsingOrgs;
        return o;
    };
    async function worker() {
        while (next < end) {
            const i = next++;
            const t0 = process.hrtime.bigint();
            try {
                const commit = await contract.submitAsync(opts.fn, proposalOptions(i));
                const status = await commit.getStatus();
                const ms = Number(process.hrtime.bigint() - t0) / 1e6;
                if (status.successful) {
                    latencies.push(ms);
                } else {
                    failed++;
                    report(`tx ${i} (${status.transactionId}) committed with status code ${status.code}, not VALID`);
                }
            } catch (err) {
                failed++;
                report(`tx ${i}: ${describeError(err)}`);
            }
        }
    }
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, n) }, worker));
    return { latencies, failed };
}

/** Nearest-rank percentile of a sorted array. */
function percentile(sorted, p) {
    if (sorted.length === 0) return null;
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const round = (x, d = 3) => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(d)));

async function main() {
    const opts = parseCli(process.argv.slice(2));
    const prof = loadProfile(opts);
    const { identity, signer } = loadIdentity(prof.mspId, prof.user);
    const client = newGrpcClient(prof.peer, prof.tlsRoot);
    const deadline = () => ({ deadline: Date.now() + opts.timeoutMs });
    let gateway;
    try {
        await waitForReady(client, prof.peer.address, Math.min(opts.timeoutMs, 15000));
        gateway = connect({
            client,
            identity,
            signer,
            hash: hash.sha256,
            endorseOptions: deadline,
            submitOptions: deadline,
            commitStatusOptions: deadline,
            evaluateOptions: deadline,
        });
        const contract = gateway.getNetwork(prof.channel).getContract(opts.chaincode);

        let reported = 0;
        const report = (msg) => {
            reported++;
            if (opts.verbose || reported <= 5) process.stderr.write(`submit.js: ${msg}\n`);
            else if (reported === 6) process.stderr.write('submit.js: (more failures not shown; --verbose shows all)\n');
        };

        process.stderr.write(
            `submit.js: ${opts.msp}/${opts.role} -> ${prof.peer.name} (${prof.peer.address}), ` +
            `${prof.channel}/${opts.chaincode} ${opts.fn}, run ${opts.runId}, ` +
            `warmup ${opts.warmup}, count ${opts.count}, concurrency ${opts.concurrency}` +
            (opts.endorsingOrgs ? `, endorsing ${opts.endorsingOrgs.join(',')}` : ', endorsers by discovery') + '\n');

        if (opts.warmup > 0) {
            const w = await runPhase(contract, opts, 0, opts.warmup, report);
            if (w.latencies.length === 0) {
                throw new SetupError(`all ${opts.warmup} warm-up transactions failed (first error above); ` +
                    'if endorsement failed on discovery, try --endorsing-orgs Org1MSP,Org2MSP');
            }
        }

        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const { latencies, failed } = await runPhase(contract, opts, opts.warmup, opts.count, report);
        const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu = process.cpuUsage(cpu0);

        const sorted = latencies.slice().sort((a, b) => a - b);
        const ok = sorted.length;
        const mean = ok ? sorted.reduce((a, b) => a + b, 0) / ok : null;
        const cpuUserMs = cpu.user / 1000;
        const cpuSystemMs = cpu.system / 1000;
        const result = {
            client: CLIENT_NAME,
            version: GATEWAY_VERSION,
            count: opts.count,
            concurrency: opts.concurrency,
            ok,
            failed,
            p50_ms: round(percentile(sorted, 50)),
            p95_ms: round(percentile(sorted, 95)),
            mean_ms: round(mean),
            wall_s: round(wallS, 4),
            tps: round(ok / wallS, 2),
            cpu_user_ms: round(cpuUserMs, 1),
            cpu_system_ms: round(cpuSystemMs, 1),
            cpu_ms_per_tx: round((cpuUserMs + cpuSystemMs) / opts.count),
            // extras, after the common fields
            p99_ms: round(percentile(sorted, 99)),
            max_ms: round(ok ? sorted[ok - 1] : null),
            warmup: opts.warmup,
            run_id: opts.runId,
            node: process.versions.node,
        };
        process.stdout.write(JSON.stringify(result) + '\n');
        return ok > 0 ? 0 : 3;
    } finally {
        if (gateway) gateway.close();
        client.close();
    }
}

main().then(
    (code) => process.exit(code),
    (err) => {
        if (err instanceof SetupError) process.stderr.write(`submit.js: error: ${err.message}\n`);
        else process.stderr.write(`submit.js: unexpected error: ${err && err.stack ? err.stack : err}\n`);
        process.exit(1);
    },
);
