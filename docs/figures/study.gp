# docs/study.png from the study's summary (scripts/study.sh): per method, KL(sigma || q),
# KL(q || sigma) and the bounds' gap at K = 16 and 64 against the horizon T, mean +- s.e. over seeds.
set datafile separator ','
set terminal pngcairo size 1500,450 font ',10'
set output out
set multiplot layout 1,3 title 'Negative-sentiment target on the built-in world: mean +- s.e. over seeds'
set xlabel 'T (words)'
set key top left
set xrange [3:17]
methods = 'CTL DPG SIXO FUDGE'
set title 'KL(sigma || q)'
plot for [i=1:4] summary using ((column(11)==i-1 && column(1)==16) ? column(2)+0.25*(i-2.5) : 1/0):7:8 \
  with yerrorlines title word(methods, i)
set title 'KL(q || sigma)'
plot for [i=1:4] summary using ((column(11)==i-1 && column(1)==16) ? column(2)+0.25*(i-2.5) : 1/0):5:6 \
  with yerrorlines title word(methods, i)
set title 'gap UB - LB (solid K = 16, dashed K = 64)'
plot for [i=1:4] summary using ((column(11)==i-1 && column(1)==16) ? column(2)+0.25*(i-2.5) : 1/0):9:10 \
  with yerrorlines lc i title word(methods, i).' K=16', \
  for [i=1:4] summary using ((column(11)==i-1 && column(1)==64) ? column(2)+0.25*(i-2.5) : 1/0):9:10 \
  with yerrorlines lc i dt 2 title word(methods, i).' K=64'
unset multiplot
