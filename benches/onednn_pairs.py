#!/usr/bin/env python3
# Interleaved comparison with oneDNN 3.2 on this machine: for each case, R rounds of (oneDNN run,
# incept run; the order alternates), each PAIR_SECONDS (0.3) s, pinned (1 thread: core 0; 2 threads: cores 0,1). Prints the medians and
# the median of the per-round speed ratios (oneDNN time / incept time; > 1 means incept is faster),
# and the median over rounds of the ratio of the two best (minimum) run times, which reflects
# each side at the machine's full speed (its slow phases come and go within a run).
# Pairs cancel most of the machine's slow phases, which sequential runs do not.
# Needs the peers built by `bash ../shared/peers/run.sh` (ONEDNN below) and `cargo build --release`.
#
#   ROUNDS=5 python3 benches/onednn_pairs.py "w2_conv3x3_192_128|1|ALL|--workload conv3x3" \
#       "w6_inception3a|2|ALL|--workload inception --accuracy relaxed" "w1_conv1x1_192_64|1|AVX2|--workload conv1x1 --isa avx2"
#   (case = ONEDNN_WORKLOAD|THREADS|ONEDNN_MAX_CPU_ISA|incept bench arguments; a workload
#   conv_N_H_W_CIN_COUT_K_S_P is any convolution, e.g. "conv_1_28_28_96_128_3_1_1|1|ALL|--conv 28,28,96,128,3")
import subprocess, json, statistics as st, sys, os, re
O=os.path.expanduser(os.environ.get("ONEDNN", "~/.cache/incept-peers/onednn32_bench"))
INC=os.environ.get("INCEPT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "incept")
R=int(os.environ.get("ROUNDS","5"))
SECONDS=os.environ.get("PAIR_SECONDS","0.3")
def onednn(wl,t,isa):
    env=dict(os.environ, OMP_NUM_THREADS=str(t), ONEDNN_BENCH_ONLY=wl, BENCH_SECONDS=SECONDS, ONEDNN_MAX_CPU_ISA=isa)
    if wl.startswith("conv_"):  # conv_N_H_W_CIN_COUT_K_S_P: a generic conv of the peers' bench
        env["ONEDNN_BENCH_CONV"]=",".join(wl.split("_")[1:])
    cpus="0" if t==1 else "0,1"
    out=subprocess.run(["taskset","-c",cpus,O,"onednn3.2","nhwc",str(t)],env=env,capture_output=True,text=True).stdout
    m=re.search(r"RESULT .*median_ms=([0-9.]+) min_ms=([0-9.]+)",out)
    return float(m.group(1)),float(m.group(2))
def ours(args,t):
    cpus="0" if t==1 else "0,1"
    out=subprocess.run(["taskset","-c",cpus,INC,"bench","--json","--seconds",SECONDS,"--threads",str(t)]+args,capture_output=True,text=True).stdout
    j=json.loads(out.strip().splitlines()[-1]); return j["median_ms"],j["min_ms"],j
cases=[l.split("|") for l in sys.argv[1:]]
for wl,t,isa,args in cases:
    t=int(t); a=args.split()
    D=[];I=[];ratios=[];best=[]
    for r in range(R):
        # Alternate which side runs first, so a drift within a round favours neither.
        if r%2==0: d=onednn(wl,t,isa); i=ours(a,t)
        else: i=ours(a,t); d=onednn(wl,t,isa)
        D.append(d[0]); I.append(i[0]); ratios.append(d[0]/i[0]); best.append(d[1]/i[1])
    print("%-32s t%d %-6s oneDNN %.4f ms  incept %.4f ms (%s)  speed ratio median %.2f  [%s]  best-run ratio %.2f"%(wl,t,isa,st.median(D),st.median(I),i[2]["workload"],st.median(ratios)," ".join("%.2f"%x for x in ratios),st.median(best)),flush=True)
