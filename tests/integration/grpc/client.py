#!/usr/bin/python3
"""gRPC client for switchyard's integration tests (grpc_inference.test.mjs).

Generates the Python stubs from proto/ into a temp dir at start, runs one
scenario against a running gateway and prints one JSON object on stdout:
{"ok": true, ...results} or {"ok": false, "error": "..."}. Every RPC has a
deadline, so a hang shows as DEADLINE_EXCEEDED rather than a stuck test.

usage: client.py SCENARIO --target HOST:PORT [--key K] [--token T]
                 [--ca PEM] [--text T] [--capture-id N] ...
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import grpc

ROOT = os.environ.get('SY_SOURCE_DIR') or os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..', '..'))


def load_stubs(stubs):
    """Stubs from `stubs` (already generated), else generated into a temp dir."""
    if stubs:
        sys.path.insert(0, stubs)
        from switchyard.v1 import inference_pb2, inference_pb2_grpc, admin_pb2, admin_pb2_grpc
        return None, inference_pb2, inference_pb2_grpc, admin_pb2, admin_pb2_grpc
    out = tempfile.mkdtemp(prefix='sy-grpc-py-')
    protos = sorted(
        os.path.join('proto', 'switchyard', 'v1', f)
        for f in os.listdir(os.path.join(ROOT, 'proto', 'switchyard', 'v1'))
        if f.endswith('.proto'))
    subprocess.run([sys.executable, '-m', 'grpc_tools.protoc', '-I', 'proto',
                    '--python_out=' + out, '--grpc_python_out=' + out] + protos,
                   cwd=ROOT, check=True)
    sys.path.insert(0, out)
    from switchyard.v1 import inference_pb2, inference_pb2_grpc, admin_pb2, admin_pb2_grpc
    return out, inference_pb2, inference_pb2_grpc, admin_pb2, admin_pb2_grpc


def code_name(e):
    return e.code().name if isinstance(e, grpc.RpcError) else type(e).__name__


def details(e):
    return e.details() if isinstance(e, grpc.RpcError) else str(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('scenario')
    ap.add_argument('--target', required=True)
    ap.add_argument('--key', default='')
    ap.add_argument('--token', default='')
    ap.add_argument('--ca', default='')
    ap.add_argument('--text', default='hello')
    ap.add_argument('--model', default='gpt-4o-mini')
    ap.add_argument('--capture-id', type=int, default=0)
    ap.add_argument('--timeout', type=float, default=10.0)
    ap.add_argument('--meta', action='append', default=[], help='k=v metadata')
    ap.add_argument('--stubs', default='', help='dir with generated stubs (else generate)')
    a = ap.parse_args()

    tmp, inf, inf_grpc, adm, adm_grpc = load_stubs(a.stubs)
    try:
        if a.ca:
            with open(a.ca, 'rb') as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            ch = grpc.secure_channel(a.target, creds,
                                     options=[('grpc.ssl_target_name_override', 'localhost')])
        else:
            ch = grpc.insecure_channel(a.target)
        md = []
        if a.key:
            md.append(('authorization', 'Bearer ' + a.key))
        if a.token:
            md.append(('authorization', 'Bearer ' + a.token))
        for kv in a.meta:
            k, v = kv.split('=', 1)
            md.append((k, v))
        res = run(a, ch, md, inf, inf_grpc, adm, adm_grpc)
        ch.close()
        print(json.dumps({'ok': True, **res}))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def chat_request(inf, a, **kw):
    return inf.ChatCompletionRequest(
        model=a.model, messages=[inf.ChatMessage(role='user', content=a.text)], **kw)


def run(a, ch, md, inf, inf_grpc, adm, adm_grpc):
    stub = inf_grpc.InferenceStub(ch)
    t0 = time.monotonic()
    sc = a.scenario

    def call(fn, req, **kw):
        try:
            r = fn(req, metadata=md, timeout=a.timeout, **kw)
            return {'code': 'OK', 'resp': r}
        except grpc.RpcError as e:
            return {'code': code_name(e), 'details': details(e)}

    if sc == 'unary':
        try:
            r, c = stub.ChatCompletion.with_call(
                chat_request(inf, a, temperature=0.0), metadata=md, timeout=a.timeout)
        except grpc.RpcError as e:
            return {'code': code_name(e), 'details': details(e)}
        imd = dict(c.initial_metadata())
        ch0 = r.choices[0] if r.choices else None
        return {'code': 'OK', 'content': ch0.message.content if ch0 else None,
                'role': ch0.message.role if ch0 else None,
                'finish_reason': ch0.finish_reason if ch0 else None,
                'id': r.id, 'model': r.model, 'capture_id': str(r.capture_id),
                'route': r.route, 'arm': r.arm, 'request_id': r.request_id,
                'usage': [r.usage.prompt_tokens, r.usage.completion_tokens,
                          r.usage.total_tokens] if r.HasField('usage') else None,
                'raw': json.loads(r.raw_json) if r.raw_json else None,
                'md_capture_id': imd.get('x-switchyard-capture-id')}

    if sc == 'stream':
        out = {'chunks': 0, 'text': '', 'finish_reason': '', 'capture_id': '0'}
        try:
            it = stub.ChatCompletionStream(chat_request(inf, a, include_usage=True),
                                           metadata=md, timeout=a.timeout)
            imd = dict(it.initial_metadata())
            out['md_capture_id'] = imd.get('x-switchyard-capture-id')
            for k in it:
                if out['chunks'] == 0:
                    out['capture_id'] = str(k.capture_id)
                    out['first_request_id'] = k.request_id
                out['chunks'] += 1
                for d in k.choices:
                    out['text'] += d.content
                    if d.finish_reason:
                        out['finish_reason'] = d.finish_reason
                if k.HasField('usage'):
                    out['usage'] = k.usage.total_tokens
            out['code'] = 'OK'
        except grpc.RpcError as e:
            out['code'] = code_name(e)
            out['details'] = details(e)
        return out

    if sc == 'stream_cancel':
        # Read one chunk of a slow stream, then cancel it.
        it = stub.ChatCompletionStream(chat_request(inf, a), metadata=md, timeout=a.timeout)
        first = next(it)
        it.cancel()
        try:
            for _ in it:
                pass
            code = 'OK'
        except grpc.RpcError as e:
            code = code_name(e)
        return {'code': code, 'first_chunk_text': ''.join(d.content for d in first.choices),
                'elapsed': time.monotonic() - t0}

    if sc == 'no_messages':
        r = call(stub.ChatCompletion, inf.ChatCompletionRequest(model=a.model))
        r.pop('resp', None)
        return r

    if sc == 'bad_json_field':
        r = call(stub.ChatCompletion, chat_request(inf, a, tools_json='[not json'))
        r.pop('resp', None)
        return r

    if sc == 'malformed':
        # Raw bytes that are not a ChatCompletionRequest.
        m = ch.unary_unary('/switchyard.v1.Inference/ChatCompletion',
                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            m(b'\x0a\xff\xff\xff\xff\x0f', metadata=md, timeout=a.timeout)
            return {'code': 'OK'}
        except grpc.RpcError as e:
            return {'code': code_name(e), 'details': details(e)}

    if sc == 'unknown_method':
        m = ch.unary_unary('/switchyard.v1.Nope/Nothing',
                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            m(b'', metadata=md, timeout=a.timeout)
            return {'code': 'OK'}
        except grpc.RpcError as e:
            return {'code': code_name(e), 'details': details(e),
                    'elapsed': time.monotonic() - t0}

    if sc == 'deadline':
        r = call(stub.ChatCompletion, chat_request(inf, a))
        r.pop('resp', None)
        r['elapsed'] = time.monotonic() - t0
        return r

    if sc == 'feedback':
        fs = inf_grpc.FeedbackServiceStub(ch)
        r = call(fs.Submit, inf.FeedbackRequest(
            capture_id=a.capture_id, rating=inf.FeedbackRequest.RATING_UP, comment='good',
            tags=['grpc']))
        if r['code'] == 'OK':
            resp = r.pop('resp')
            r['capture_id'] = str(resp.capture_id)
            r['feedback_id'] = str(resp.feedback_id)
        return r

    if sc == 'health':
        st = adm_grpc.AdminStub(ch)
        r = call(st.Health, adm.HealthRequest())
        if r['code'] == 'OK':
            resp = r.pop('resp')
            r.update(status=resp.status, caller=resp.caller, role=resp.role,
                     workers=resp.workers, version=resp.version)
        return r

    if sc == 'admin_mutation':
        st = adm_grpc.AdminStub(ch)
        r = call(st.Promote, adm.PromoteRequest(name='r', arm='a', reason='test'))
        r.pop('resp', None)
        return r

    raise SystemExit('unknown scenario ' + sc)


if __name__ == '__main__':
    main()
