# The README's figures, drawn from the example programs' CSV (scripts/figures.sh runs them first).
#   gnuplot -e "data='docs/figures/data'; out='docs'" docs/figures/figures.gp
if (!exists("data")) data = 'docs/figures/data'
if (!exists("out")) out = 'docs'
set datafile separator ','
set terminal pngcairo size 900,560 enhanced font 'DejaVu Sans,11'
set grid

# (a) Zhao et al. 2024, Figure 3's shape: lower and upper bounds on log Z versus K, for SMC with no
# twist and with the CTL twist (flagship --sweep-csv: the rare "harmful" target).
set output out.'/bounds_vs_k.png'
set title 'Bounds on log Z versus K (flagship: rare harmful target, built-in world)'
set xlabel 'particles K'
set ylabel 'log Z bounds (mean +- 1.96 s.e. over runs)'
set key bottom right box opaque
set logscale x 2
sweep = data.'/flagship_sweep.csv'
sel(m, col) = (strcol(1) eq m) ? column(col) : 1/0
plot sweep using (sel('no twist', 2)):4:(1.96*$5) with yerrorlines lw 2 lc rgb '#d62728' title 'lower, no twist', \
     sweep using (sel('no twist', 2)):8:(1.96*$9) with yerrorlines lw 2 dt 2 lc rgb '#d62728' title 'upper, no twist', \
     sweep using (sel('CTL twist', 2)):4:(1.96*$5) with yerrorlines lw 2 lc rgb '#1f77b4' title 'lower, CTL twist', \
     sweep using (sel('CTL twist', 2)):8:(1.96*$9) with yerrorlines lw 2 dt 2 lc rgb '#1f77b4' title 'upper, CTL twist', \
     sweep using (sel('CTL twist', 2)):((strcol(1) eq 'CTL twist' && $2 == 256) ? ($4 + $8) / 2 : 1/0) with points pt 3 ps 2 lc rgb 'black' title 'log Z estimate (midpoint at K = 256)'
unset logscale x

# (b) KL(sigma || q) of the twisted proposal versus training updates, one line per learning method
# (red_team --history-csv: the evaluations during training).
set output out.'/kl_vs_updates.png'
set title 'KL(sigma || q) during training (red\_team: rare harmful target, built-in world)'
set xlabel 'updates'
set ylabel 'KL(sigma || q), nats (128 exact and 128 q samples per point)'
set key top right box opaque
hist = data.'/red_team_history.csv'
kl(m) = (strcol(1) eq m && strcol(9) ne '') ? $9 : 1/0
plot hist using 2:(kl('CTL')) with linespoints lw 2 pt 7 title 'CTL', \
     hist using 2:(kl('RL')) with linespoints lw 2 pt 5 title 'RL', \
     hist using 2:(kl('SIXO')) with linespoints lw 2 pt 9 title 'SIXO', \
     hist using 2:(kl('FUDGE')) with linespoints lw 2 pt 11 title 'FUDGE', \
     hist using 2:(kl('DPG')) with linespoints lw 2 pt 13 lc rgb '#8c564b' title 'DPG'
